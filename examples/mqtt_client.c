/* mqtt_client - an MQTT client (libmosquitto) on an evloop loop, which keeps going through broker
 * restarts: publishes a counter every second on a topic it also subscribes to, and prints what
 * comes back.
 *
 *   ./mqtt_client [host [port [topic [count]]]]      (default 127.0.0.1 1883 evloop/demo 5)
 *
 * Stop the broker while it runs and start it again: the client reconnects with back-off (50 ms
 * doubling to 5 s), subscribes again (a broker without persistence forgot the subscription), and
 * carries on; the io watcher follows the new socket even when it gets the old one's number.  Ends
 * after count messages came back (0: never), or on Ctrl-C.  See docs/mqtt.md. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <mosquitto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glue/evl_mosquitto.h"

static const char *topic = "evloop/demo";
static int wanted = 5, received, sent;
static evl_loop loop;
static evl_mqtt client;

static void on_connect(struct mosquitto *mosq, void *obj, int rc) {
    (void)obj;
    printf("connected (%s), subscribing to %s\n", mosquitto_connack_string(rc), topic);
    if (rc == 0) mosquitto_subscribe(mosq, NULL, topic, 1);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg) {
    (void)mosq, (void)obj;
    printf("received on %s: %.*s\n", msg->topic, msg->payloadlen, (const char *)msg->payload);
    if (++received == wanted) evl_stop(&loop);
}

static void on_lost(evl_mqtt *m) {
    printf("connection lost; retrying in %.2f s\n", (double)evl_timer_remaining(m->loop, &m->retry) / 1e9);
}

static void on_tick(evl_loop *l, evl_timer *t) {
    char payload[32];
    int n = snprintf(payload, sizeof payload, "message %d", ++sent);
    (void)l, (void)t;
    /* QoS 1 while disconnected: libmosquitto queues it and sends it after the reconnect. */
    mosquitto_publish(client.mosq, NULL, topic, n, payload, 1, false);
}

static void on_interrupt(evl_loop *l, evl_signal *s, int signum) {
    (void)s, (void)signum;
    evl_stop(l);
}

int main(int argc, char **argv) {
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    int port = argc > 2 ? atoi(argv[2]) : 1883;
    struct mosquitto *mosq;
    evl_timer tick;
    evl_signal interrupt;
    if (argc > 3) topic = argv[3];
    if (argc > 4) wanted = atoi(argv[4]);
    if (evl_init(&loop) < 0) return 1;
    mosquitto_lib_init();
    mosq = mosquitto_new(NULL, true, NULL);
    if (!mosq) return 1;
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_message_callback_set(mosq, on_message);

    evl_mqtt_start(&client, &loop, mosq, host, port, 10);
    client.on_lost = on_lost;
    evl_timer_init(&tick, on_tick);
    evl_timer_start(&loop, &tick, EVL_MS(200), EVL_SEC(1));
    evl_signal_init(&interrupt, on_interrupt, SIGINT);
    evl_signal_start(&loop, &interrupt);
    evl_unref(&loop, &interrupt);

    evl_run(&loop, EVL_FOREVER);
    printf("%d sent, %d received, %u connection attempts\n", sent, received, client.attempts);

    evl_mqtt_stop(&client);
    evl_timer_stop(&loop, &tick);
    evl_signal_stop(&loop, &interrupt);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    evl_deinit(&loop);
    return received >= wanted ? 0 : 1;
}
