//  tests/unit/test_exchange.c — routing: topic patterns, direct, fanout.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "exchange.h"
#include <string.h>

static bool
s_match (const char *pattern, const char *key)
{
    return exchange_topic_match (pattern, fedq_str_of (key));
}

static void
test_topic_patterns (void **state)
{
    (void) state;
    struct {
        const char *pattern, *key;
        bool match;
    } cases[] = {
      {"order.#", "order.created", true},
      {"order.#", "order", true},
      {"order.#", "order.a.b.c", true},
      {"order.#", "orders.created", false},
      {"order.*", "order.created", true},
      {"order.*", "order", false},
      {"order.*", "order.a.b", false},
      {"*.created", "order.created", true},
      {"*.created", "created", false},
      {"#", "", true},
      {"#", "a.b.c", true},
      {"#.c", "a.b.c", true},
      {"#.c", "c", true},
      {"#.c", "a.b.d", false},
      {"a.#.c", "a.c", true},
      {"a.#.c", "a.x.y.c", true},
      {"a.#.c", "a.x.y.d", false},
      {"a.*.#", "a.b", true},
      {"a.*.#", "a", false},
      {"#.#", "a", true},
      {"a.b", "a.b", true},
      {"a.b", "a.b.c", false},
      {"a.b.c", "a.b", false},
      {"", "", true},
      {"", "a", false},
      {"*", "", true},
      {"a..b", "a..b", true},
      {"#.a.#", "x.a.y", true},
      {"#.a.#", "x.b.y", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = s_match (cases[i].pattern, cases[i].key);
        if (got != cases[i].match)
            fail_msg ("pattern \"%s\" key \"%s\": expected %d", cases[i].pattern,
                      cases[i].key, cases[i].match);
    }
}

static void
test_route_types (void **state)
{
    (void) state;
    proto_qopts_t opts = {.durable = true};
    queue_t *a = queue_new ("a", 1, &opts);
    queue_t *b = queue_new ("b", 2, &opts);
    queue_t *out[8];

    exchange_t *direct = exchange_new ("d", EXCHANGE_DIRECT);
    assert_true (exchange_bind (direct, a, "k1"));
    assert_false (exchange_bind (direct, a, "k1"));
    assert_true (exchange_bind (direct, b, "k2"));
    assert_true (exchange_bind (direct, b, "k1"));
    assert_int_equal (exchange_route (direct, fedq_str_of ("k1"), out, 0, 8), 2);
    assert_int_equal (exchange_route (direct, fedq_str_of ("k2"), out, 0, 8), 1);
    assert_ptr_equal (out[0], b);
    assert_int_equal (exchange_route (direct, fedq_str_of ("k3"), out, 0, 8), 0);
    assert_true (exchange_unbind (direct, b, "k1"));
    assert_false (exchange_unbind (direct, b, "k1"));
    assert_int_equal (exchange_route (direct, fedq_str_of ("k1"), out, 0, 8), 1);

    exchange_t *fanout = exchange_new ("f", EXCHANGE_FANOUT);
    exchange_bind (fanout, a, "");
    exchange_bind (fanout, b, "x");
    exchange_bind (fanout, b, "y");      //  bound twice: one copy
    assert_int_equal (exchange_route (fanout, fedq_str_of ("any"), out, 0, 8), 2);
    exchange_unbind_queue (fanout, b);
    assert_int_equal (exchange_route (fanout, fedq_str_of ("any"), out, 0, 8), 1);

    exchange_t *topic = exchange_new ("t", EXCHANGE_TOPIC);
    exchange_bind (topic, a, "order.#");
    exchange_bind (topic, b, "*.created");
    assert_int_equal (exchange_route (topic, fedq_str_of ("order.created"), out, 0, 8), 2);
    assert_int_equal (exchange_route (topic, fedq_str_of ("order.paid"), out, 0, 8), 1);
    assert_int_equal (exchange_route (topic, fedq_str_of ("user.created"), out, 0, 8), 1);
    assert_ptr_equal (out[0], b);
    //  The output cap is respected.
    assert_int_equal (exchange_route (topic, fedq_str_of ("order.created"), out, 0, 1), 1);

    exchange_type_t t;
    assert_int_equal (exchange_type_parse (fedq_str_of ("topic"), &t), FEDQ_OK);
    assert_int_equal (t, EXCHANGE_TOPIC);
    assert_int_equal (exchange_type_parse (fedq_str_of ("headers"), &t), FEDQ_EINVAL);

    exchange_destroy (&direct);
    exchange_destroy (&fanout);
    exchange_destroy (&topic);
    queue_destroy (&a);
    queue_destroy (&b);
    assert_null (a);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
      cmocka_unit_test (test_topic_patterns),
      cmocka_unit_test (test_route_types),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
