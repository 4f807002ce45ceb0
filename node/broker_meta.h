//  node/broker_meta.h — declarations that survive a restart: durable
//  queues (with their log ids), exchanges and bindings, kept in
//  DATA_DIR/meta.json, replaced atomically on every change. Internal to
//  the broker.
#ifndef BROKER_META_H_INCLUDED
#define BROKER_META_H_INCLUDED

#include "broker.h"
#include <czmq.h>

//  Load meta.json (a missing file is an empty node) into the broker.
fedq_rc_t
    broker_meta_load (broker_t *broker);

//  Write meta.json atomically (temp file, fsync, rename, fsync dir).
fedq_rc_t
    broker_meta_save (broker_t *broker);

//  Broker internals the meta file reads and writes.
const char *
    broker_data_dir (broker_t *self);
uint64_t *
    broker_next_qid (broker_t *self);
zhashx_t *
    broker_queue_table (broker_t *self);
//  The data directory's incarnation: set once by a fresh directory,
//  read back from meta.json ("" for a directory older than the field).
char **
    broker_incarnation (broker_t *self);
zhashx_t *
    broker_exchange_table (broker_t *self);
queue_t *
    broker_queue_create (broker_t *self, const char *name, uint64_t qid,
                         const proto_qopts_t *opts, bool from_config);

#endif
