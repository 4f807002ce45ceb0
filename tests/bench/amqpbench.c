/* tests/bench/amqpbench.c — copied unchanged (below this line) from the
 * RabbitMQ anchor the project is measured against; used by scripts/bench
 * shovel (tests/bench/bench_shovel.py) for the side-by-side figures. */
/* amqpbench: tiny AMQP 0-9-1 load client on librabbitmq (rabbitmq-c 0.11).
 * Build: cc -O2 -o amqpbench amqpbench.c -lrabbitmq
 * Subcommands (all connect to 127.0.0.1:PORT as guest/guest, vhost "/"):
 *   declare-queue PORT QUEUE            durable classic queue
 *   declare-exchange PORT EXCH TYPE     durable exchange
 *   bind PORT QUEUE EXCH KEY
 *   delete-queue PORT QUEUE
 *   delete-exchange PORT EXCH
 *   purge PORT QUEUE
 *   count PORT QUEUE                    prints ready message count
 *   publish PORT EXCH RKEY N SIZE WINDOW RATE
 *        persistent (delivery_mode 2), publisher confirms, WINDOW unconfirmed
 *        in flight; RATE msgs/s (0 = as fast as possible). Body starts with
 *        the send time (CLOCK_REALTIME ns) for latency measurement.
 *   consume PORT QUEUE N PREFETCH TIMEOUT_S
 *        manual acks (multiple, every PREFETCH/4), reports rate and
 *        end-to-end latency (now - timestamp in body).
 *   waitcount PORT QUEUE N TIMEOUT_S
 *        polls passive queue.declare every 2 ms until ready count >= N;
 *        reports the forwarding rate between the first observed increase
 *        and reaching N.
 * Output: one line of key=value pairs (machine readable).
 */
#define _GNU_SOURCE
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <amqp_framing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/time.h>

static const char *HOST = "127.0.0.1";

static double now_s(void) {
  struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}
static int64_t now_real_ns(void) {
  struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static void die_reply(amqp_rpc_reply_t r, const char *what) {
  switch (r.reply_type) {
  case AMQP_RESPONSE_NORMAL: return;
  case AMQP_RESPONSE_NONE: fprintf(stderr, "%s: missing RPC reply\n", what); break;
  case AMQP_RESPONSE_LIBRARY_EXCEPTION:
    fprintf(stderr, "%s: %s\n", what, amqp_error_string2(r.library_error)); break;
  case AMQP_RESPONSE_SERVER_EXCEPTION:
    if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
      amqp_connection_close_t *m = r.reply.decoded;
      fprintf(stderr, "%s: connection error %u %.*s\n", what, m->reply_code,
              (int)m->reply_text.len, (char *)m->reply_text.bytes);
    } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
      amqp_channel_close_t *m = r.reply.decoded;
      fprintf(stderr, "%s: channel error %u %.*s\n", what, m->reply_code,
              (int)m->reply_text.len, (char *)m->reply_text.bytes);
    } else fprintf(stderr, "%s: server error method %08X\n", what, r.reply.id);
    break;
  }
  exit(2);
}

static amqp_connection_state_t conn_open(int port) {
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t *s = amqp_tcp_socket_new(c);
  if (!s) { fprintf(stderr, "socket alloc failed\n"); exit(2); }
  if (amqp_socket_open(s, HOST, port) != AMQP_STATUS_OK) {
    fprintf(stderr, "cannot connect to %s:%d\n", HOST, port); exit(2);
  }
  die_reply(amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login");
  amqp_channel_open(c, 1);
  die_reply(amqp_get_rpc_reply(c), "channel.open");
  return c;
}
static void conn_close(amqp_connection_state_t c) {
  amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
}

/* ---------- publisher with windowed confirms ---------- */
static unsigned char *confirmed; /* per delivery tag */
static uint64_t n_confirmed, n_nacked, low_tag = 1;

static void mark_range(uint64_t tag, int multiple, int nack) {
  if (multiple) {
    for (uint64_t t = low_tag; t <= tag; t++)
      if (!confirmed[t]) { confirmed[t] = 1; n_confirmed++; if (nack) n_nacked++; }
  } else if (!confirmed[tag]) { confirmed[tag] = 1; n_confirmed++; if (nack) n_nacked++; }
  while (confirmed[low_tag]) low_tag++;
}

/* read and handle frames; block for the first one if block != 0 */
static void read_confirms(amqp_connection_state_t c, int block) {
  for (;;) {
    amqp_frame_t f; int r;
    if (block) { r = amqp_simple_wait_frame(c, &f); block = 0; }
    else {
      struct timeval tv = {0, 0};
      r = amqp_simple_wait_frame_noblock(c, &f, &tv);
      if (r == AMQP_STATUS_TIMEOUT) return;
    }
    if (r != AMQP_STATUS_OK) { fprintf(stderr, "wait_frame: %s\n", amqp_error_string2(r)); exit(2); }
    if (f.frame_type != AMQP_FRAME_METHOD) continue;
    switch (f.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
      amqp_basic_ack_t *a = f.payload.method.decoded;
      mark_range(a->delivery_tag, a->multiple, 0); break; }
    case AMQP_BASIC_NACK_METHOD: {
      amqp_basic_nack_t *a = f.payload.method.decoded;
      mark_range(a->delivery_tag, a->multiple, 1); break; }
    case AMQP_CHANNEL_CLOSE_METHOD: {
      amqp_channel_close_t *m = f.payload.method.decoded;
      fprintf(stderr, "channel closed: %u %.*s\n", m->reply_code, (int)m->reply_text.len,
              (char *)m->reply_text.bytes); exit(2); }
    case AMQP_CONNECTION_CLOSE_METHOD: fprintf(stderr, "connection closed by server\n"); exit(2);
    default: break;
    }
    amqp_maybe_release_buffers(c);
  }
}

static int cmd_publish(int port, const char *exch, const char *rkey, long n, long size,
                       long window, double rate) {
  if (size < 16) size = 16;
  amqp_connection_state_t c = conn_open(port);
  amqp_confirm_select(c, 1);
  die_reply(amqp_get_rpc_reply(c), "confirm.select");
  confirmed = calloc(n + 2, 1);
  char *body = malloc(size);
  memset(body, 'x', size);
  amqp_basic_properties_t props;
  memset(&props, 0, sizeof props);
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = 2;
  props.content_type = amqp_cstring_bytes("application/octet-stream");
  amqp_bytes_t b = {(size_t)size, body};
  amqp_bytes_t ex = amqp_cstring_bytes(exch), rk = amqp_cstring_bytes(rkey);
  double t0 = now_s();
  struct timespec start; clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < n; i++) {
    while ((uint64_t)i - n_confirmed >= (uint64_t)window) read_confirms(c, 1);
    if (rate > 0) {
      double due = i / rate;
      struct timespec ts = start;
      ts.tv_sec += (time_t)due;
      ts.tv_nsec += (long)((due - (time_t)due) * 1e9);
      if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
    int64_t stamp = now_real_ns();
    memcpy(body, &stamp, sizeof stamp);
    int r = amqp_basic_publish(c, 1, ex, rk, 0, 0, &props, b);
    if (r != AMQP_STATUS_OK) { fprintf(stderr, "publish: %s\n", amqp_error_string2(r)); exit(2); }
    if (rate > 0 || (i & 63) == 63) read_confirms(c, 0);
  }
  while (n_confirmed < (uint64_t)n) read_confirms(c, 1);
  double dt = now_s() - t0;
  printf("op=publish n=%ld size=%ld window=%ld target_rate=%.0f secs=%.3f msgs_per_s=%.0f MB_per_s=%.2f nacked=%llu\n",
         n, size, window, rate, dt, n / dt, n * (double)size / dt / 1e6,
         (unsigned long long)n_nacked);
  conn_close(c);
  return n_nacked ? 1 : 0;
}

/* ---------- consumer with latency ---------- */
static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}
static int cmd_consume(int port, const char *q, long n, long prefetch, double timeout) {
  amqp_connection_state_t c = conn_open(port);
  amqp_basic_qos(c, 1, 0, (uint16_t)prefetch, 0);
  die_reply(amqp_get_rpc_reply(c), "basic.qos");
  amqp_basic_consume(c, 1, amqp_cstring_bytes(q), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  die_reply(amqp_get_rpc_reply(c), "basic.consume");
  long ack_every = prefetch / 4 > 0 ? prefetch / 4 : 1;
  int64_t *lat = malloc(sizeof(int64_t) * (n + 1));
  long got = 0; size_t bytes = 0;
  double t_start = now_s(), t_first = 0, t_last = 0;
  uint64_t last_tag = 0; long unacked = 0;
  while (got < n) {
    amqp_envelope_t env;
    struct timeval tv = {(time_t)timeout, 0};
    amqp_maybe_release_buffers(c);
    amqp_rpc_reply_t r = amqp_consume_message(c, &env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
      int64_t t = now_real_ns();
      double tm = now_s();
      if (!got) t_first = tm;
      t_last = tm;
      int64_t stamp = 0;
      if (env.message.body.len >= 8) memcpy(&stamp, env.message.body.bytes, 8);
      lat[got++] = t - stamp;
      bytes += env.message.body.len;
      last_tag = env.delivery_tag;
      amqp_destroy_envelope(&env);
      if (++unacked >= ack_every || got == n) {
        amqp_basic_ack(c, 1, last_tag, 1); unacked = 0;
      }
    } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
               r.library_error == AMQP_STATUS_TIMEOUT) {
      fprintf(stderr, "consume: timeout after %ld messages\n", got); break;
    } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
               r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      amqp_frame_t f;
      if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK) break;
    } else die_reply(r, "consume");
  }
  if (got == 0) { printf("op=consume n=0\n"); return 1; }
  qsort(lat, got, sizeof(int64_t), cmp_i64);
  double span = t_last - t_first;
  printf("op=consume n=%ld secs_total=%.3f secs_first_to_last=%.3f msgs_per_s=%.0f MB_per_s=%.2f "
         "lat_p50_ms=%.3f lat_p90_ms=%.3f lat_p99_ms=%.3f lat_p999_ms=%.3f lat_max_ms=%.3f\n",
         got, t_last - t_start, span, span > 0 ? (got - 1) / span : 0,
         span > 0 ? bytes / span / 1e6 : 0,
         lat[got / 2] / 1e6, lat[(long)(got * 0.90)] / 1e6, lat[(long)(got * 0.99)] / 1e6,
         lat[(long)(got * 0.999)] / 1e6, lat[got - 1] / 1e6);
  conn_close(c);
  return got == n ? 0 : 1;
}

/* ---------- queue / exchange admin ---------- */
static long qcount(amqp_connection_state_t c, const char *q) {
  amqp_queue_declare_ok_t *ok =
      amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 1, 0, 0, 0, amqp_empty_table);
  die_reply(amqp_get_rpc_reply(c), "queue.declare(passive)");
  return ok->message_count;
}
static int cmd_waitcount(int port, const char *q, long n, double timeout) {
  amqp_connection_state_t c = conn_open(port);
  double t_begin = now_s(), t_first = 0;
  long c_begin = qcount(c, q), c_first = -1, cur = c_begin;
  struct timespec ts = {0, 2000000};
  while (cur < n) {
    if (now_s() - t_begin > timeout) {
      fprintf(stderr, "waitcount: timeout at %ld\n", cur);
      printf("op=waitcount n=%ld reached=%ld timeout=1\n", n, cur); return 1;
    }
    nanosleep(&ts, NULL);
    cur = qcount(c, q);
    if (c_first < 0 && cur > c_begin) { c_first = cur; t_first = now_s(); }
    amqp_maybe_release_buffers(c);
  }
  double t_end = now_s();
  if (c_first < 0) { c_first = c_begin; t_first = t_begin; }
  double span = t_end - t_first;
  printf("op=waitcount n=%ld start_count=%ld first_seen=%ld secs_since_start=%.3f "
         "secs_first_to_n=%.3f msgs_per_s=%.0f\n",
         n, c_begin, c_first, t_end - t_begin, span,
         span > 0 ? (n - c_first) / span : 0);
  conn_close(c);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: see header of amqpbench.c\n"); return 2; }
  const char *cmd = argv[1];
  int port = atoi(argv[2]);
  if (!strcmp(cmd, "publish") && argc == 9)
    return cmd_publish(port, argv[3], argv[4], atol(argv[5]), atol(argv[6]), atol(argv[7]), atof(argv[8]));
  if (!strcmp(cmd, "consume") && argc == 7)
    return cmd_consume(port, argv[3], atol(argv[4]), atol(argv[5]), atof(argv[6]));
  if (!strcmp(cmd, "waitcount") && argc == 6)
    return cmd_waitcount(port, argv[3], atol(argv[4]), atof(argv[5]));
  amqp_connection_state_t c = conn_open(port);
  if (!strcmp(cmd, "declare-queue") && argc == 4) {
    amqp_queue_declare(c, 1, amqp_cstring_bytes(argv[3]), 0, 1, 0, 0, amqp_empty_table);
    die_reply(amqp_get_rpc_reply(c), "queue.declare");
  } else if (!strcmp(cmd, "declare-exchange") && argc == 5) {
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(argv[3]), amqp_cstring_bytes(argv[4]), 0, 1, 0, 0, amqp_empty_table);
    die_reply(amqp_get_rpc_reply(c), "exchange.declare");
  } else if (!strcmp(cmd, "bind") && argc == 6) {
    amqp_queue_bind(c, 1, amqp_cstring_bytes(argv[3]), amqp_cstring_bytes(argv[4]), amqp_cstring_bytes(argv[5]), amqp_empty_table);
    die_reply(amqp_get_rpc_reply(c), "queue.bind");
  } else if (!strcmp(cmd, "delete-queue") && argc == 4) {
    amqp_queue_delete(c, 1, amqp_cstring_bytes(argv[3]), 0, 0);
    die_reply(amqp_get_rpc_reply(c), "queue.delete");
  } else if (!strcmp(cmd, "delete-exchange") && argc == 4) {
    amqp_exchange_delete(c, 1, amqp_cstring_bytes(argv[3]), 0);
    die_reply(amqp_get_rpc_reply(c), "exchange.delete");
  } else if (!strcmp(cmd, "purge") && argc == 4) {
    amqp_queue_purge(c, 1, amqp_cstring_bytes(argv[3]));
    die_reply(amqp_get_rpc_reply(c), "queue.purge");
  } else if (!strcmp(cmd, "count") && argc == 4) {
    printf("%ld\n", qcount(c, argv[3]));
  } else { fprintf(stderr, "bad command/arguments\n"); return 2; }
  conn_close(c);
  return 0;
}
