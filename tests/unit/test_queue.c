//  tests/unit/test_queue.c — the queue index: order, priorities, requeue,
//  limits, dedup window; and the u64 map it relies on.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "queue.h"
#include "u64map.h"
#include <stdlib.h>

static qentry_t
s_entry (uint64_t pos, uint8_t priority, uint32_t size)
{
    qentry_t e = {.pos = pos, .priority = priority, .size = size};
    return e;
}

static void
s_count_cb (void *ctx, const qentry_t *e)
{
    (void) e;
    (*(size_t *) ctx)++;
}

static void
test_fifo_and_growth (void **state)
{
    (void) state;
    proto_qopts_t opts = {.durable = true};
    queue_t *q = queue_new ("q", 1, &opts);
    for (uint64_t i = 1; i <= 100000; i++) {
        qentry_t e = s_entry (i, 0, 10);
        queue_push (q, &e);
    }
    assert_int_equal (queue_depth (q), 100000);
    assert_int_equal (q->ready_bytes, 1000000);
    qentry_t e;
    for (uint64_t i = 1; i <= 100000; i++) {
        assert_true (queue_pop (q, &e));
        assert_int_equal (e.pos, i);
    }
    assert_false (queue_pop (q, &e));
    assert_int_equal (q->ready_bytes, 0);
    queue_destroy (&q);
}

static void
test_priorities_and_requeue (void **state)
{
    (void) state;
    proto_qopts_t opts = {.durable = true, .max_priority = 5};
    queue_t *q = queue_new ("q", 1, &opts);
    uint8_t prios[] = {0, 3, 9, 5, 3, 0};   //  9 is capped to 5
    for (int i = 0; i < 6; i++) {
        qentry_t e = s_entry ((uint64_t) i + 1, prios[i], 1);
        queue_push (q, &e);
    }
    uint64_t expect[] = {3, 4, 2, 5, 1, 6};
    qentry_t e;
    for (int i = 0; i < 6; i++) {
        assert_true (queue_pop (q, &e));
        assert_int_equal (e.pos, expect[i]);
    }
    //  Requeue goes back to the head of its level.
    qentry_t a = s_entry (10, 0, 1), b = s_entry (11, 0, 1);
    queue_push (q, &a);
    queue_push_front (q, &b);
    assert_true (queue_pop (q, &e));
    assert_int_equal (e.pos, 11);
    //  Drop-head takes the oldest of the lowest priority.
    qentry_t hi = s_entry (12, 4, 1);
    queue_push (q, &hi);
    assert_true (queue_pop_oldest (q, &e));
    assert_int_equal (e.pos, 10);
    queue_destroy (&q);
}

static void
test_limits (void **state)
{
    (void) state;
    proto_qopts_t opts = {.max_length = 2, .max_bytes = 100};
    queue_t *q = queue_new ("q", 1, &opts);
    assert_false (queue_would_overflow (q, 1, 10));
    qentry_t e = s_entry (1, 0, 60);
    queue_push (q, &e);
    assert_true (queue_would_overflow (q, 1, 50));      //  bytes
    assert_false (queue_would_overflow (q, 1, 40));
    q->pending_count = 1;
    assert_true (queue_would_overflow (q, 1, 1));       //  length with pending
    q->pending_count = 0;
    queue_destroy (&q);
}

static void
test_dedup (void **state)
{
    (void) state;
    proto_qopts_t opts = {.dedup_window_ms = 1000};
    queue_t *q = queue_new ("q", 1, &opts);
    assert_false (queue_dedup_check (q, fedq_str_of ("m1"), 10000));
    assert_true (queue_dedup_check (q, fedq_str_of ("m1"), 10500));
    assert_false (queue_dedup_check (q, fedq_str_of ("m2"), 10500));
    assert_false (queue_dedup_check (q, fedq_str_of (""), 10500));
    //  Outside the window it is new again.
    assert_false (queue_dedup_check (q, fedq_str_of ("m1"), 11600));
    queue_dedup_expire (q, 13000);
    assert_false (queue_dedup_check (q, fedq_str_of ("m2"), 13000));
    queue_destroy (&q);
}

static void
test_u64map_against_reference (void **state)
{
    (void) state;
    enum { N = 5000 };
    static uint64_t ref[N];     //  0 = absent; value = key * 7
    u64map_t map = {0};
    srand (42);
    for (int round = 0; round < 200000; round++) {
        uint64_t key = (uint64_t) (rand () % N) + 1;
        int op = rand () % 3;
        if (op == 0) {
            u64map_put (&map, key << 32, key * 7);
            ref[key - 1] = key * 7;
        }
        else if (op == 1) {
            bool had = u64map_del (&map, key << 32);
            assert_int_equal (had, ref[key - 1] != 0);
            ref[key - 1] = 0;
        }
        else {
            uint64_t v;
            bool has = u64map_get (&map, key << 32, &v);
            assert_int_equal (has, ref[key - 1] != 0);
            if (has)
                assert_int_equal (v, ref[key - 1]);
        }
    }
    size_t count = 0;
    for (int i = 0; i < N; i++)
        count += ref[i] != 0;
    assert_int_equal (map.count, count);
    u64map_free (&map);
}

static qentry_t
s_held (uint64_t pos, int64_t at, int rank)
{
    qentry_t e = {.pos = pos, .enqueued_at = at, .size = 10,
                  .flags = (uint8_t) (QENTRY_HELD
                                      | ((rank - 1) << QENTRY_RANK_SHIFT))};
    return e;
}

//  consume: global handoff: held entries count in depth and limits, are
//  released in arrival order when due (by rank), local ones are never
//  behind them, a removed one is flushed undelivered, drain takes all.
static void
test_held_fifo (void **state)
{
    (void) state;
    proto_qopts_t opts = {.durable = true, .max_length = 5};
    queue_t *q = queue_new ("q", 1, &opts);
    q->fed_handoff_ms = 1000;
    qentry_t e = s_held (1, 100, 1);
    queue_push (q, &e);
    e = s_held (2, 200, 1);
    queue_push (q, &e);
    e = s_held (3, 150, 2);                 //  due at 2150
    queue_push (q, &e);
    e = s_entry (4, 0, 10);                 //  local: ready at once
    queue_push (q, &e);
    assert_int_equal (q->held_count, 3);
    assert_int_equal (q->ready_count, 1);
    assert_int_equal (queue_depth (q), 4);
    assert_int_equal (q->held_bytes, 30);
    assert_false (queue_would_overflow (q, 1, 0));
    assert_true (queue_would_overflow (q, 2, 0));
    assert_int_equal (queue_peek (q)->pos, 4);

    int64_t next;
    assert_int_equal (queue_release_held (q, 1099, &next), 0);
    assert_int_equal (next, 1100);
    assert_int_equal (queue_release_held (q, 1200, &next), 2);
    assert_int_equal (next, 2150);
    assert_true (queue_pop (q, &e));
    assert_int_equal (e.pos, 4);
    assert_true (queue_pop (q, &e));
    assert_int_equal (e.pos, 1);
    assert_int_equal (e.flags, 0);
    assert_true (queue_pop (q, &e));
    assert_int_equal (e.pos, 2);
    assert_false (queue_pop (q, &e));
    assert_int_equal (queue_depth (q), 1);

    //  A tombstone for a held one: out of depth at once, flushed.
    queue_skip_add (q, 3);
    assert_int_equal (queue_depth (q), 0);
    size_t flushed = 0;
    queue_skip_flush (q, s_count_cb, &flushed);
    assert_int_equal (flushed, 1);
    assert_int_equal (q->held_count, 0);
    assert_int_equal (q->held_bytes, 0);
    assert_int_equal (queue_release_held (q, 9999, &next), 0);
    assert_int_equal (next, INT64_MAX);

    //  Drain (purge, delete) takes held entries too.
    e = s_held (5, 100, 1);
    queue_push (q, &e);
    flushed = 0;
    queue_drain (q, s_count_cb, &flushed);
    assert_int_equal (flushed, 1);
    assert_int_equal (queue_depth (q), 0);
    queue_destroy (&q);
}

//  Ranks: sorted member ids as a circle, counted from the origin.
static void
test_handoff_rank (void **state)
{
    (void) state;
    proto_qopts_t opts = {.durable = true};
    queue_t *q = queue_new ("q", 1, &opts);
    const char *peers[] = {"n3", "n1"};
    queue_set_fed_members (q, "n2", peers, 2);
    assert_int_equal (queue_handoff_rank (q, fedq_str_of ("n1")), 1);
    assert_int_equal (queue_handoff_rank (q, fedq_str_of ("n3~x7")), 2);
    assert_int_equal (queue_handoff_rank (q, fedq_str_of ("other")), 1);
    queue_set_fed_members (q, "n3", peers + 1, 1);
    assert_int_equal (queue_handoff_rank (q, fedq_str_of ("n1")), 1);
    queue_destroy (&q);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
      cmocka_unit_test (test_fifo_and_growth),
      cmocka_unit_test (test_priorities_and_requeue),
      cmocka_unit_test (test_limits),
      cmocka_unit_test (test_dedup),
      cmocka_unit_test (test_held_fifo),
      cmocka_unit_test (test_handoff_rank),
      cmocka_unit_test (test_u64map_against_reference),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
