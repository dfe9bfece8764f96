"""PyMongo (the reference client) against the mongo-testkit server.

Started by run.sh, which passes the servers through the environment:
  TESTKIT_AUTH   host:port of a standalone with users app:secret and sha1user:pw1
  TESTKIT_RS     comma-separated host:port list of replica set "rs0" (3 members)
  TESTKIT_TLS    host:port of a TLS standalone; TESTKIT_CA is its CA file
Where PyMongo and the testkit disagree, PyMongo is right.
"""

import os
import sys
import time
import unittest

import pymongo
from bson import ObjectId
from pymongo import MongoClient, monitoring
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DuplicateKeyError,
    NotPrimaryError,
    OperationFailure,
)

AUTH = os.environ.get("TESTKIT_AUTH", "127.0.0.1:27017")
RS = os.environ.get("TESTKIT_RS", "")
TLS = os.environ.get("TESTKIT_TLS", "")
CA = os.environ.get("TESTKIT_CA", "")

FAST = dict(serverSelectionTimeoutMS=5000, connectTimeoutMS=3000)


def client(**kw):
    opts = dict(FAST)
    opts.update(kw)
    return MongoClient(f"mongodb://{AUTH}/?directConnection=true", **opts)


def app_client(**kw):
    return client(username="app", password="secret", authSource="admin", **kw)


class Handshake(unittest.TestCase):
    def test_hello_fields(self):
        with client() as c:
            reply = c.admin.command("hello")
            self.assertTrue(reply["isWritablePrimary"])
            self.assertEqual(reply["maxWireVersion"], 25)
            self.assertEqual(reply["minWireVersion"], 0)
            self.assertEqual(reply["maxBsonObjectSize"], 16777216)
            self.assertEqual(reply["maxMessageSizeBytes"], 48000000)
            self.assertEqual(reply["logicalSessionTimeoutMinutes"], 30)
            self.assertIsInstance(reply["topologyVersion"]["processId"], ObjectId)
            self.assertIn("connectionId", reply)

    def test_ping_and_build_info_without_auth(self):
        with client() as c:
            self.assertEqual(c.admin.command("ping")["ok"], 1.0)
            self.assertEqual(c.admin.command("buildInfo")["version"], "8.0.4")

    def test_unknown_command(self):
        with app_client() as c:
            with self.assertRaises(OperationFailure) as ctx:
                c.admin.command("noSuchCommand")
            self.assertEqual(ctx.exception.code, 59)
            self.assertEqual(ctx.exception.details["codeName"], "CommandNotFound")

    def _compressed_round_trip(self, compressor, context_name):
        with app_client(compressors=compressor) as c:
            c.test.comp.drop()
            c.test.comp.insert_many([{"i": i, "pad": "x" * 200} for i in range(50)])
            self.assertEqual(c.test.comp.count_documents({}), 50)
            self.assertEqual(len(list(c.test.comp.find().batch_size(7))), 50)
            # PyMongo compresses only when the handshake negotiated the compressor: look at
            # the compression context of its pooled connections (internal, but the only place
            # PyMongo records the outcome of the negotiation).
            contexts = {
                type(conn.compression_context).__name__
                for server in c._topology._servers.values()
                for conn in server.pool.conns
            }
            self.assertEqual(contexts, {context_name})

    def test_compression_zlib(self):
        self._compressed_round_trip("zlib", "ZlibContext")

    def test_compression_snappy(self):
        self._compressed_round_trip("snappy", "SnappyContext")

    def test_compression_zstd(self):
        self._compressed_round_trip("zstd", "ZstdContext")


class Auth(unittest.TestCase):
    def test_scram_sha_256(self):
        with app_client(authMechanism="SCRAM-SHA-256") as c:
            status = c.admin.command("connectionStatus")
            users = status["authInfo"]["authenticatedUsers"]
            self.assertEqual(users, [{"user": "app", "db": "admin"}])

    def test_scram_sha_1(self):
        with client(username="sha1user", password="pw1", authMechanism="SCRAM-SHA-1") as c:
            self.assertEqual(c.admin.command("connectionStatus")["ok"], 1.0)
            c.test.sha1.insert_one({"x": 1})

    def test_default_mechanism_negotiation(self):
        # No mechanism given: PyMongo uses saslSupportedMechs and speculative auth.
        with app_client() as c:
            c.test.nego.insert_one({"x": 1})

    def test_wrong_password(self):
        with client(username="app", password="wrong") as c:
            with self.assertRaises(OperationFailure) as ctx:
                c.admin.command("ping")
            self.assertEqual(ctx.exception.code, 18)

    def test_unauthenticated_command_refused(self):
        with client() as c:
            with self.assertRaises(OperationFailure) as ctx:
                c.test.coll.find_one()
            self.assertEqual(ctx.exception.code, 13)


class Crud(unittest.TestCase):
    def setUp(self):
        self.c = app_client()
        self.coll = self.c.crud.items
        self.coll.drop()

    def tearDown(self):
        self.c.close()

    def test_insert_find_getmore(self):
        self.coll.insert_many([{"_id": i, "v": i % 5, "tag": f"t{i}"} for i in range(250)])
        docs = list(self.coll.find({"v": {"$gte": 3}}).sort("_id", -1).batch_size(10))
        self.assertEqual(len(docs), 100)
        self.assertEqual(docs[0]["_id"], 249)
        got = list(self.coll.find({}, {"tag": 1, "_id": 0}).skip(5).limit(3))
        self.assertEqual(got, [{"tag": "t5"}, {"tag": "t6"}, {"tag": "t7"}])
        self.assertEqual(self.coll.count_documents({"v": 0}), 50)
        self.assertEqual(self.coll.estimated_document_count(), 250)
        self.assertEqual(sorted(self.coll.distinct("v")), [0, 1, 2, 3, 4])

    def test_cursor_kill_and_not_found(self):
        self.coll.insert_many([{"i": i} for i in range(30)])
        cur = self.coll.find().batch_size(5)
        next(cur)
        cursor_id = cur.cursor_id
        self.assertNotEqual(cursor_id, 0)
        self.assertIsInstance(cursor_id, int)
        cur.close()
        with self.assertRaises(OperationFailure) as ctx:
            self.c.crud.command("getMore", cursor_id, collection="items")
        self.assertEqual(ctx.exception.code, 43)

    def test_duplicate_key_and_unordered(self):
        self.coll.insert_one({"_id": 1})
        with self.assertRaises(DuplicateKeyError):
            self.coll.insert_one({"_id": 1})
        with self.assertRaises(BulkWriteError) as ctx:
            self.coll.insert_many([{"_id": 2}, {"_id": 1}, {"_id": 3}], ordered=False)
        details = ctx.exception.details
        self.assertEqual(details["nInserted"], 2)
        self.assertEqual(details["writeErrors"][0]["index"], 1)
        self.assertEqual(details["writeErrors"][0]["code"], 11000)

    def test_update_upsert_delete(self):
        self.coll.insert_many([{"_id": i, "n": 1} for i in range(5)])
        r = self.coll.update_many({"_id": {"$lt": 3}}, {"$inc": {"n": 2}, "$set": {"s": "y"}})
        self.assertEqual((r.matched_count, r.modified_count), (3, 3))
        r = self.coll.update_one({"_id": 99}, {"$set": {"n": 7}}, upsert=True)
        self.assertEqual(r.upserted_id, 99)
        self.assertEqual(self.coll.find_one({"_id": 99}), {"_id": 99, "n": 7})
        r = self.coll.update_one({"_id": 0}, {"$unset": {"s": ""}})
        self.assertEqual(r.modified_count, 1)
        self.assertEqual(self.coll.replace_one({"_id": 4}, {"z": 1}).modified_count, 1)
        self.assertEqual(self.coll.find_one({"_id": 4}), {"_id": 4, "z": 1})
        doc = self.coll.find_one_and_update({"_id": 1}, {"$inc": {"n": 1}}, return_document=True)
        self.assertEqual(doc["n"], 4)
        self.assertEqual(self.coll.delete_one({"n": {"$gte": 3}}).deleted_count, 1)
        self.assertEqual(self.coll.delete_many({}).deleted_count, 5)

    def test_generated_ids_and_aggregate(self):
        ids = self.coll.insert_many([{"g": "a", "v": 1}, {"g": "b", "v": 2}, {"g": "a", "v": 3}]).inserted_ids
        self.assertTrue(all(isinstance(i, ObjectId) for i in ids))
        out = list(self.coll.aggregate([
            {"$match": {"v": {"$gt": 0}}},
            {"$group": {"_id": "$g", "total": {"$sum": "$v"}}},
            {"$sort": {"_id": 1}},
        ]))
        self.assertEqual(out, [{"_id": "a", "total": 4}, {"_id": "b", "total": 2}])

    def test_list_and_drop(self):
        self.c.crud.create_collection("made")
        self.assertIn("made", self.c.crud.list_collection_names())
        self.assertIn("crud", self.c.list_database_names())
        self.c.crud.made.drop()
        self.assertNotIn("made", self.c.crud.list_collection_names())
        self.c.drop_database("crud_tmp")


class FailPoints(unittest.TestCase):
    def setUp(self):
        self.c = app_client(retryReads=False, retryWrites=False)

    def tearDown(self):
        self.c.admin.command("configureFailPoint", "failCommand", mode="off")
        self.c.close()

    def test_error_code_and_labels(self):
        self.c.admin.command(
            "configureFailPoint", "failCommand", mode={"times": 1},
            data={"failCommands": ["find"], "errorCode": 2, "errorLabels": ["Custom"]},
        )
        self.c.fp.empty.drop()
        with self.assertRaises(OperationFailure) as ctx:
            self.c.fp.empty.find_one()
        self.assertEqual(ctx.exception.code, 2)
        self.assertTrue(ctx.exception.has_error_label("Custom"))
        self.assertIsNone(self.c.fp.empty.find_one())  # times: 1 is used up

    def test_close_connection(self):
        self.c.admin.command(
            "configureFailPoint", "failCommand", mode={"times": 1},
            data={"failCommands": ["insert"], "closeConnection": True},
        )
        with self.assertRaises(AutoReconnect):
            self.c.fp.coll.insert_one({"x": 1})
        self.c.fp.coll.insert_one({"x": 2})

    def test_block_connection(self):
        self.c.admin.command(
            "configureFailPoint", "failCommand", mode={"times": 1},
            data={"failCommands": ["ping"], "blockConnection": True, "blockTimeMS": 300},
        )
        start = time.monotonic()
        self.c.admin.command("ping")
        self.assertGreaterEqual(time.monotonic() - start, 0.28)

    def test_retryable_write_after_error(self):
        with app_client(retryWrites=True) as c:
            c.admin.command(
                "configureFailPoint", "failCommand", mode={"times": 1},
                data={"failCommands": ["insert"], "errorCode": 91,
                      "errorLabels": ["RetryableWriteError"]},
            )
            # Retryable writes need a replica set; on a standalone PyMongo does not retry, so
            # the state-change error (91, ShutdownInProgress) surfaces as NotPrimaryError.
            with self.assertRaises(NotPrimaryError) as ctx:
                c.fp.coll.insert_one({"x": 3})
            self.assertEqual(ctx.exception.details["code"], 91)
            self.assertTrue(ctx.exception.has_error_label("RetryableWriteError"))


class ReplicaSet(unittest.TestCase):
    @unittest.skipUnless(RS, "TESTKIT_RS not set")
    def test_discovery_reads_and_step_down(self):
        events = []

        class Topo(monitoring.ServerHeartbeatListener):
            def started(self, e):
                pass

            def succeeded(self, e):
                events.append(e.awaited)

            def failed(self, e):
                pass

        with MongoClient(f"mongodb://{RS}/?replicaSet=rs0", event_listeners=[Topo()],
                         heartbeatFrequencyMS=500, **FAST) as c:
            c.admin.command("ping")
            hosts = RS.split(",")
            self.assertEqual(c.primary, tuple_of(hosts[0]))
            deadline = time.monotonic() + 10
            while len(c.secondaries) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(c.secondaries, {tuple_of(h) for h in hosts[1:]})
            c.rsdb.coll.drop()
            c.rsdb.coll.insert_many([{"i": i} for i in range(20)])
            sec = c.rsdb.get_collection("coll", read_preference=pymongo.ReadPreference.SECONDARY)
            self.assertEqual(sec.count_documents({}), 20)
            # Streaming monitor: PyMongo's awaited heartbeats come back.
            deadline = time.monotonic() + 10
            while True not in events and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertIn(True, events, "no awaited (streaming) heartbeat seen")
            old = c.primary
            c.admin.command("replSetStepDown", 10)
            deadline = time.monotonic() + 10
            while (c.primary is None or c.primary == old) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertIsNotNone(c.primary)
            self.assertNotEqual(c.primary, old)
            c.rsdb.coll.insert_one({"after": True})
            self.assertEqual(c.rsdb.coll.count_documents({"after": True}), 1)

    @unittest.skipUnless(RS, "TESTKIT_RS not set")
    def test_retryable_write_after_close_connection(self):
        # PyMongo retries the insert once after the primary hangs up on it (retryable writes
        # spec); the collection then holds the document exactly once.
        with MongoClient(f"mongodb://{RS}/?replicaSet=rs0", retryWrites=True, **FAST) as c:
            c.rsdb.retried.drop()
            c.admin.command(
                "configureFailPoint", "failCommand", mode={"times": 1},
                data={"failCommands": ["insert"], "closeConnection": True},
            )
            try:
                c.rsdb.retried.insert_one({"_id": "once"})
            finally:
                c.admin.command("configureFailPoint", "failCommand", mode="off")
            self.assertEqual(c.rsdb.retried.count_documents({"_id": "once"}), 1)

    @unittest.skipUnless(RS, "TESTKIT_RS not set")
    def test_secondary_refuses_writes(self):
        hosts = RS.split(",")
        with MongoClient(f"mongodb://{hosts[2]}/?directConnection=true", **FAST) as c:
            reply = c.admin.command("hello")
            self.assertEqual(reply["setName"], "rs0")
            if reply["isWritablePrimary"]:
                self.skipTest("member 2 is primary after the step-down")
            with self.assertRaises(NotPrimaryError) as ctx:
                c.rsdb.coll.insert_one({"x": 1})
            self.assertEqual(ctx.exception.details["code"], 10107)
            self.assertEqual(ctx.exception.details["errmsg"], "not primary")


class ChangeStreams(unittest.TestCase):
    @unittest.skipUnless(RS, "TESTKIT_RS not set")
    def test_insert_update_lookup_and_resume_after_the_server_kills_the_cursor(self):
        uri = f"mongodb://{RS}/?replicaSet=rs0"
        with MongoClient(uri, **FAST) as c, MongoClient(uri, **FAST) as other:
            coll = c.csdb.items
            coll.drop()
            coll.insert_one({"_id": 0})
            with coll.watch(full_document="updateLookup", max_await_time_ms=200) as cs:
                other.csdb.items.insert_one({"_id": 1, "n": 1})
                other.csdb.items.update_one({"_id": 1}, {"$inc": {"n": 1}})
                ev = cs.next()
                self.assertEqual(ev["operationType"], "insert")
                self.assertEqual(ev["documentKey"], {"_id": 1})
                self.assertEqual(ev["fullDocument"], {"_id": 1, "n": 1})
                self.assertEqual(ev["ns"], {"db": "csdb", "coll": "items"})
                ev = cs.next()
                self.assertEqual(ev["operationType"], "update")
                self.assertEqual(ev["updateDescription"]["updatedFields"], {"n": 2})
                self.assertEqual(ev["fullDocument"], {"_id": 1, "n": 2})
                # The server closes the cursor: the next getMore fails with CursorNotFound
                # and PyMongo resumes after the last event it saw.
                cid = cs._cursor.cursor_id
                killed = other.csdb.command("killCursors", "items", cursors=[cid])
                self.assertEqual(killed["cursorsKilled"], [cid])
                other.csdb.items.insert_one({"_id": 2})
                ev = cs.next()
                self.assertEqual(ev["operationType"], "insert")
                self.assertEqual(ev["documentKey"], {"_id": 2})
                self.assertNotEqual(cs._cursor.cursor_id, cid)
                other.csdb.items.drop()
                self.assertEqual(cs.next()["operationType"], "drop")
                self.assertEqual(cs.next()["operationType"], "invalidate")
                self.assertFalse(cs.alive)

    def test_a_standalone_refuses_change_streams(self):
        with app_client() as c:
            with self.assertRaises(OperationFailure) as ctx:
                c.csdb.items.watch()
            self.assertEqual(ctx.exception.code, 40573)


class Transactions(unittest.TestCase):
    """Multi-document transactions on the replica set (transactions spec)."""

    def setUp(self):
        if not RS:
            self.skipTest("TESTKIT_RS not set")
        self.client = MongoClient(f"mongodb://{RS}/?replicaSet=rs0", **FAST)
        self.coll = self.client.txndb.accounts
        self.coll.drop()
        self.coll.insert_many([{"_id": "a", "balance": 100}, {"_id": "b", "balance": 0}])

    def tearDown(self):
        self.client.close()

    def balances(self):
        return {d["_id"]: d["balance"] for d in self.coll.find()}

    def test_commit_moves_a_value_atomically(self):
        outside = []

        def transfer(session):
            self.coll.update_one({"_id": "a"}, {"$inc": {"balance": -30}}, session=session)
            self.coll.update_one({"_id": "b"}, {"$inc": {"balance": 30}}, session=session)
            # The transaction sees its own writes; a read outside it sees neither.
            self.assertEqual(self.coll.find_one({"_id": "a"}, session=session)["balance"], 70)
            outside.append(self.balances())

        with self.client.start_session() as s:
            s.with_transaction(transfer)
        self.assertEqual(outside, [{"a": 100, "b": 0}])
        self.assertEqual(self.balances(), {"a": 70, "b": 30})

    def test_abort_leaves_nothing_behind(self):
        with self.client.start_session() as s:
            s.start_transaction()
            self.coll.update_one({"_id": "a"}, {"$inc": {"balance": -30}}, session=s)
            self.coll.insert_one({"_id": "c", "balance": 30}, session=s)
            self.assertEqual(self.coll.count_documents({}, session=s), 3)
            s.abort_transaction()
        self.assertEqual(self.balances(), {"a": 100, "b": 0})

    def test_write_conflict_is_transient(self):
        # Two transactions writing the same document: the second fails with WriteConflict
        # labelled TransientTransactionError, and the first still commits.
        with self.client.start_session() as s1, self.client.start_session() as s2:
            s1.start_transaction()
            self.coll.update_one({"_id": "a"}, {"$inc": {"balance": -1}}, session=s1)
            s2.start_transaction()
            with self.assertRaises(OperationFailure) as ctx:
                self.coll.update_one({"_id": "a"}, {"$inc": {"balance": -2}}, session=s2)
            self.assertEqual(ctx.exception.code, 112)
            self.assertTrue(ctx.exception.has_error_label("TransientTransactionError"))
            s2.abort_transaction()
            s1.commit_transaction()
        self.assertEqual(self.balances(), {"a": 99, "b": 0})


class Tls(unittest.TestCase):
    @unittest.skipUnless(TLS and CA, "TESTKIT_TLS not set")
    def test_tls_round_trip(self):
        with MongoClient(f"mongodb://{TLS}/?directConnection=true", tls=True, tlsCAFile=CA,
                         **FAST) as c:
            c.tlsdb.c.insert_one({"secure": True})
            self.assertEqual(c.tlsdb.c.find_one({}, {"_id": 0}), {"secure": True})


def tuple_of(host):
    h, p = host.rsplit(":", 1)
    return (h, int(p))


if __name__ == "__main__":
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"pymongo-interop: {passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)
