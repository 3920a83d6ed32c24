// Unit tests of the Presence Sync Applier's logic (staticresources/PresenceSyncCore.js), with fakes
// for the Omni toolkit, the Apex token call, the WebSocket and time. Run: node --test salesforce/tests/js
"use strict";

const { test } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");

const core = require(path.join(__dirname, "../../force-app/main/default/staticresources/PresenceSyncCore.js"));

const USER = "005000000000001AAA";
const OTHER_USER = "005000000000002AAA";
const BREAK = "0N5000000000003CAA";
const LUNCH = "0N5000000000004CAA";
const START = Date.parse("2026-11-25T10:00:00.000Z");

async function settle() {
    for (let i = 0; i < 20; i++) {
        await new Promise((resolve) => setImmediate(resolve));
    }
}

function fakeClock(start = START) {
    let now = start;
    let timers = [];
    let seq = 0;
    return {
        now: () => now,
        setTimeout: (callback, ms) => {
            seq += 1;
            timers.push({ id: seq, at: now + ms, callback });
            return seq;
        },
        clearTimeout: (id) => {
            timers = timers.filter((timer) => timer.id !== id);
        },
        pending: () => timers.map((timer) => timer.at - now).sort((a, b) => a - b),
        async advance(ms) {
            const end = now + ms;
            for (;;) {
                timers.sort((a, b) => a.at - b.at || a.id - b.id);
                const next = timers[0];
                if (!next || next.at > end) {
                    break;
                }
                timers.shift();
                now = next.at;
                next.callback();
                await settle();
            }
            now = end;
            await settle();
        }
    };
}

class FakeSocket {
    constructor(url) {
        this.url = url;
        this.sent = [];
        this.closedWith = null;
        this.autoPong = true; // a live gateway answers pings
    }
    send(text) {
        const message = JSON.parse(text);
        this.sent.push(message);
        if (message.type === "ping" && this.autoPong) {
            queueMicrotask(() => this.deliver({ type: "pong" }));
        }
    }
    close(code, reason) {
        this.closedWith = { code, reason };
    }
    // the gateway's side
    open() {
        this.onopen({});
    }
    deliver(message) {
        this.onmessage({ data: JSON.stringify(message) });
    }
    serverClose(code, reason = "") {
        this.onclose({ code, reason });
    }
    messages(type) {
        return this.sent.filter((message) => message.type === type);
    }
}

const STATUS_NAMES = {
    "0N5000000000002": ["Available", "Available"],
    "0N5000000000003": ["On_Break", "On Break"],
    "0N5000000000004": ["Lunch", "Lunch"]
};

function fakeOmni() {
    const omni = {
        calls: [],
        denied: new Set(),
        shown: null, // the status Id the console shows; null: logged out of Omni-Channel
        setServicePresenceStatus({ statusId }) {
            omni.calls.push(["set", statusId]);
            if (omni.denied.has(statusId)) {
                return Promise.reject({ message: "Agent doesn't have access to the presence status " + statusId });
            }
            omni.shown = statusId;
            const [api, label] = STATUS_NAMES[statusId];
            return Promise.resolve({ statusId, statusApiName: api, statusName: label, channels: "[]" });
        },
        getServicePresenceStatusId() {
            if (omni.shown === null) {
                return Promise.reject({ message: "The agent is not logged in to Omni-Channel" });
            }
            const [api, label] = STATUS_NAMES[omni.shown];
            return Promise.resolve({ statusId: omni.shown, statusApiName: api, statusName: label });
        },
        logout() {
            omni.calls.push(["logout"]);
            omni.shown = null;
            return Promise.resolve(true);
        }
    };
    return omni;
}

function command(id, fields = {}) {
    return Object.assign({
        type: "command",
        command_id: id,
        issued_at: new Date(START).toISOString(),
        user_id: USER,
        action: "set_status",
        status_id: BREAK,
        status: "On_Break"
    }, fields);
}

function harness(options = {}) {
    const clock = options.clock || fakeClock();
    const omni = options.omni || fakeOmni();
    const sockets = [];
    let grants = 0;
    const failingGrants = options.failingGrants || new Set(); // which calls (1-based) Apex refuses
    const applier = core.createApplier({ omni, userId: USER, storage: options.storage, now: clock.now });
    const states = [];
    const client = core.createConsoleClient({
        applier,
        fetchGrant: () => {
            grants += 1;
            if (failingGrants.has(grants)) {
                return Promise.reject({ message: "Apex said no" });
            }
            return Promise.resolve({ token: "token-" + grants, gatewayUrl: "wss://gateway.example.com/console" });
        },
        openSocket: (url) => {
            const socket = new FakeSocket(url);
            sockets.push(socket);
            return socket;
        },
        setTimeout: clock.setTimeout,
        clearTimeout: clock.clearTimeout,
        now: clock.now,
        random: () => 1,
        onStateChange: (state, detail) => states.push([state, detail])
    });
    return {
        clock, omni, sockets, applier, client, states,
        grants: () => grants,
        socket: () => sockets[sockets.length - 1],
        async connect(expiresInMs = 900000) {
            client.start();
            await settle();
            const socket = sockets[sockets.length - 1];
            socket.open();
            socket.deliver({
                type: "welcome", protocol: 1, connection_id: "gw-1-abc", user_id: USER,
                token_expires_at: new Date(clock.now() + expiresInMs).toISOString(), heartbeat_seconds: 25
            });
            await settle();
            return socket;
        }
    };
}

test("connects, authenticates with a token from Apex in the first message, never in the URL", async () => {
    const h = harness();
    const socket = await h.connect();
    assert.equal(socket.url, "wss://gateway.example.com/console");
    assert.deepEqual(socket.sent[0], { type: "hello", protocol: 1, token: "token-1", client: "PresenceSyncApplier/2" });
    assert.equal(h.client.state(), "connected");
    assert.ok(!socket.url.includes("token"));
});

test("renews the token before it expires, with a fresh one, and again after each renewal", async () => {
    const h = harness();
    const socket = await h.connect(900000);
    await h.clock.advance(599000);
    assert.equal(socket.messages("renew").length, 0);
    await h.clock.advance(1000); // a third of the lifetime before expiry
    assert.deepEqual(socket.messages("renew"), [{ type: "renew", token: "token-2" }]);
    socket.deliver({ type: "renewed", token_expires_at: new Date(h.clock.now() + 900000).toISOString() });
    await h.clock.advance(600000);
    assert.deepEqual(socket.messages("renew").map((m) => m.token), ["token-2", "token-3"]);
});

test("a failed renewal is retried before the token expires", async () => {
    const h = harness({ failingGrants: new Set([2]) });
    const socket = await h.connect(900000);
    await h.clock.advance(600000);
    assert.equal(h.grants(), 2);
    assert.equal(socket.messages("renew").length, 0);
    await h.clock.advance(15000);
    assert.deepEqual(socket.messages("renew"), [{ type: "renew", token: "token-3" }]);
});

test("a command is applied and acknowledged with the status the console shows", async () => {
    const h = harness();
    const socket = await h.connect();
    socket.deliver(command("c-1"));
    await settle();
    assert.deepEqual(h.omni.calls, [["set", "0N5000000000003"]]);
    assert.deepEqual(socket.messages("ack"), [{
        type: "ack", command_id: "c-1", outcome: "applied",
        status: { status_id: "0N5000000000003", status: "On_Break", label: "On Break" }
    }]);
});

test("a status the profile lacks is acknowledged failed with the console's error", async () => {
    const h = harness();
    h.omni.denied.add("0N5000000000004");
    const socket = await h.connect();
    socket.deliver(command("c-2", { status_id: LUNCH, status: "Lunch" }));
    await settle();
    assert.deepEqual(socket.messages("ack"), [{
        type: "ack", command_id: "c-2", outcome: "failed",
        error: "Agent doesn't have access to the presence status 0N5000000000004"
    }]);
});

test("the same command twice is applied once; the second is ignored as a duplicate", async () => {
    const h = harness();
    const socket = await h.connect();
    socket.deliver(command("c-1"));
    socket.deliver(command("c-1"));
    await settle();
    assert.equal(h.omni.calls.length, 1);
    const [first, second] = socket.messages("ack");
    assert.equal(first.outcome, "applied");
    assert.equal(second.outcome, "ignored");
    assert.equal(second.reason, "duplicate");
    assert.equal(second.original_outcome, "applied");
    assert.deepEqual(second.status, first.status);
});

test("a duplicate survives a reload: what was handled is kept in storage", async () => {
    const storage = core.memoryStorage();
    const omni = fakeOmni();
    const before = core.createApplier({ omni, userId: USER, storage });
    assert.equal((await before.apply(command("c-1"))).outcome, "applied");
    const after = core.createApplier({ omni, userId: USER, storage }); // the page reloaded
    const again = await after.apply(command("c-1"));
    assert.equal(again.outcome, "ignored");
    assert.equal(again.reason, "duplicate");
    assert.equal(omni.calls.length, 1);
});

test("a compare-and-set command applies over a status it names, and over a logout when it names null", async () => {
    const omni = fakeOmni();
    const applier = core.createApplier({ omni, userId: USER });
    const fromOffline = await applier.apply(command("a", { issued_at: "2026-11-25T10:00:01.000Z", if_showing: ["Available", null] }));
    const fromBreak = await applier.apply(command("b", {
        issued_at: "2026-11-25T10:00:02.000Z", status_id: LUNCH, status: "Lunch", if_showing: ["On_Break"]
    }));
    assert.equal(fromOffline.outcome, "applied");
    assert.equal(fromBreak.outcome, "applied");
    assert.deepEqual(omni.calls, [["set", "0N5000000000003"], ["set", "0N5000000000004"]]);
});

test("a compare-and-set command finding another status is ignored, not as expected, and says what is shown", async () => {
    const omni = fakeOmni();
    omni.shown = "0N5000000000004"; // the agent picked Lunch after the sync decided from Available
    const applier = core.createApplier({ omni, userId: USER });
    const answer = await applier.apply(command("a", { if_showing: ["Available"] }));
    assert.deepEqual(answer, {
        type: "ack", command_id: "a", outcome: "ignored", reason: "not as expected",
        status: { status_id: "0N5000000000004", status: "Lunch", label: "Lunch" }
    });
    omni.shown = null; // and a logout the command did not expect
    const logout = await applier.apply(command("b", { issued_at: "2026-11-25T10:00:02.000Z", action: "logout", if_showing: ["Lunch"] }));
    assert.deepEqual([logout.outcome, logout.reason, logout.status], ["ignored", "not as expected", null]);
    assert.deepEqual(omni.calls, []);
    assert.equal((await applier.apply(command("a", { if_showing: ["Lunch"] }))).reason, "duplicate");
});

test("a command older than the newest applied one is ignored as stale", async () => {
    const h = harness();
    const socket = await h.connect();
    socket.deliver(command("newer", { issued_at: "2026-11-25T10:00:05.000Z" }));
    socket.deliver(command("older", { issued_at: "2026-11-25T10:00:01.000Z", status_id: LUNCH }));
    await settle();
    assert.deepEqual(h.omni.calls, [["set", "0N5000000000003"]]);
    const stale = socket.messages("ack")[1];
    assert.deepEqual(stale, { type: "ack", command_id: "older", outcome: "ignored", reason: "stale", newer_command_id: "newer" });
});

test("commands are applied one at a time, in arrival order", async () => {
    const omni = fakeOmni();
    let release;
    const slow = new Promise((resolve) => { release = resolve; });
    const order = [];
    omni.setServicePresenceStatus = ({ statusId }) => {
        order.push(statusId);
        return statusId === "0N5000000000003" ? slow.then(() => ({ statusId })) : Promise.resolve({ statusId });
    };
    const applier = core.createApplier({ omni, userId: USER });
    const first = applier.apply(command("a", { issued_at: "2026-11-25T10:00:01.000Z" }));
    const second = applier.apply(command("b", { issued_at: "2026-11-25T10:00:02.000Z", status_id: LUNCH }));
    await settle();
    assert.deepEqual(order, ["0N5000000000003"]);
    release();
    assert.equal((await first).outcome, "applied");
    assert.equal((await second).outcome, "applied");
    assert.deepEqual(order, ["0N5000000000003", "0N5000000000004"]);
});

test("a command received before the agent's own later change is ignored, not applied over it", async () => {
    const omni = fakeOmni();
    let release;
    const slow = new Promise((resolve) => { release = resolve; });
    omni.setServicePresenceStatus = ({ statusId }) => {
        omni.calls.push(["set", statusId]);
        return slow.then(() => ({ statusId }));
    };
    let now = START;
    const applier = core.createApplier({ omni, userId: USER, now: () => now });
    const first = applier.apply(command("a", { issued_at: "2026-11-25T10:00:01.000Z" }));
    now += 10;
    const second = applier.apply(command("b", { issued_at: "2026-11-25T10:00:02.000Z", status_id: LUNCH }));
    await settle();
    now += 10;
    assert.equal(applier.ownChange("logout", null, null), null); // the agent logs out while "b" waits
    release();
    assert.equal((await first).outcome, "applied");
    assert.deepEqual(await second, {
        type: "ack", command_id: "b", outcome: "ignored", reason: "superseded by the agent's own change"
    });
    assert.deepEqual(omni.calls, [["set", "0N5000000000003"]]); // "b" would have logged the agent back in
    now += 10;
    assert.equal((await applier.apply(command("c", { issued_at: "2026-11-25T10:00:03.000Z" }))).outcome, "applied");
});

test("a logout command logs the agent out of Omni-Channel", async () => {
    const h = harness();
    const socket = await h.connect();
    socket.deliver(command("bye", { action: "logout", status_id: undefined, status: undefined }));
    await settle();
    assert.deepEqual(h.omni.calls, [["logout"]]);
    assert.deepEqual(socket.messages("ack"), [{ type: "ack", command_id: "bye", outcome: "applied", status: null }]);
    h.client.loggedOut({});
    assert.equal(socket.messages("status_changed")[0].command_id, "bye");
});

test("a command for another user is refused, not applied", async () => {
    const h = harness();
    const socket = await h.connect();
    socket.deliver(command("not-mine", { user_id: OTHER_USER }));
    await settle();
    assert.equal(h.omni.calls.length, 0);
    assert.equal(socket.messages("ack")[0].outcome, "failed");
});

test("an agent's own change is pushed with its reason and no command id", async () => {
    const h = harness();
    const socket = await h.connect();
    h.client.statusChanged({ statusId: "0N5000000000004", statusApiName: "Lunch", statusName: "Lunch", reason: "OmniManualStatusChange" });
    h.client.loggedOut({ reason: "OmniSupervisorLogout" });
    assert.deepEqual(socket.messages("status_changed"), [
        {
            type: "status_changed", event: "status_changed", reason: "OmniManualStatusChange",
            status: { status_id: "0N5000000000004", status: "Lunch", label: "Lunch" },
            at: "2026-11-25T10:00:00.000Z", command_id: null
        },
        { type: "status_changed", event: "logout", status: null, reason: "OmniSupervisorLogout", at: "2026-11-25T10:00:00.000Z", command_id: null }
    ]);
});

test("the toolkit change our command caused is marked as ours; a later manual one is not", async () => {
    const h = harness();
    const socket = await h.connect();
    socket.deliver(command("c-1"));
    await settle(); // the toolkit's event follows our call
    h.client.statusChanged({ statusId: "0N5000000000003", statusApiName: "On_Break", statusName: "On Break", reason: "OmniToolkitStatusChange" });
    h.client.statusChanged({ statusId: "0N5000000000003", statusApiName: "On_Break", statusName: "On Break", reason: "OmniManualStatusChange" });
    const pushes = socket.messages("status_changed");
    assert.equal(pushes[0].command_id, "c-1");
    assert.equal(pushes[0].reason, "OmniToolkitStatusChange");
    assert.equal(pushes[1].command_id, null);
});

test("a toolkit change by another component (another status) is not ours", async () => {
    const h = harness();
    const socket = await h.connect();
    socket.deliver(command("c-1"));
    await settle();
    h.client.statusChanged({ statusId: "0N5000000000004", statusApiName: "Lunch", reason: "OmniToolkitStatusChange" });
    assert.equal(socket.messages("status_changed")[0].command_id, null);
});

test("changes seen while disconnected are pushed after the next welcome", async () => {
    const h = harness();
    const first = await h.connect();
    first.serverClose(1006);
    h.client.statusChanged({ statusId: "0N5000000000004", statusApiName: "Lunch", reason: "OmniManualStatusChange" });
    await h.clock.advance(1000);
    const second = h.socket();
    assert.notEqual(second, first);
    second.open();
    assert.equal(second.messages("status_changed").length, 0);
    second.deliver({ type: "welcome", token_expires_at: new Date(h.clock.now() + 900000).toISOString(), heartbeat_seconds: 25 });
    await settle();
    assert.equal(second.messages("status_changed")[0].reason, "OmniManualStatusChange");
});

test("reconnects with growing backoff and a fresh token each time; a welcome resets the backoff", async () => {
    const h = harness();
    await h.connect();
    h.socket().serverClose(1006);
    assert.deepEqual(h.clock.pending(), [1000]);
    await h.clock.advance(1000);
    assert.equal(h.sockets.length, 2);
    h.socket().serverClose(1006);
    assert.deepEqual(h.clock.pending(), [2000]);
    await h.clock.advance(2000);
    h.socket().serverClose(1011);
    assert.deepEqual(h.clock.pending(), [4000]);
    await h.clock.advance(4000);
    assert.equal(h.grants(), 4);
    const socket = h.socket();
    socket.open();
    assert.equal(socket.sent[0].token, "token-4");
    socket.deliver({ type: "welcome", token_expires_at: new Date(h.clock.now() + 900000).toISOString(), heartbeat_seconds: 25 });
    await settle();
    socket.serverClose(4001, "token expired");
    assert.equal(h.clock.pending()[0], 1000);
});

test("backoff is capped and jittered", () => {
    assert.equal(core.backoffDelay(0, () => 0, 1000, 60000), 500);
    assert.equal(core.backoffDelay(3, () => 1, 1000, 60000), 8000);
    assert.equal(core.backoffDelay(20, () => 1, 1000, 60000), 60000);
});

test("no token from Apex: waits and tries again", async () => {
    const h = harness({ failingGrants: new Set([1, 2]) });
    h.client.start();
    await settle();
    assert.equal(h.sockets.length, 0);
    assert.equal(h.client.state(), "waiting");
    await h.clock.advance(1000);
    await h.clock.advance(2000);
    assert.equal(h.sockets.length, 1);
});

test("a rate-limit close waits longer before reconnecting", async () => {
    const h = harness();
    await h.connect();
    h.socket().serverClose(4007, "too many messages");
    assert.deepEqual(h.clock.pending(), [8000]);
});

test("replaced by a newer console, or an incompatible gateway: stops for good", async () => {
    for (const code of [4010, 4009]) {
        const h = harness();
        await h.connect();
        h.socket().serverClose(code, "replaced");
        assert.equal(h.client.state(), "stopped");
        assert.deepEqual(h.clock.pending(), []);
    }
});

test("pings the gateway, and reconnects when it stops answering", async () => {
    const h = harness();
    const socket = await h.connect();
    socket.autoPong = false;
    await h.clock.advance(25000);
    assert.equal(socket.messages("ping").length, 1);
    socket.deliver({ type: "pong" });
    await h.clock.advance(25000);
    assert.equal(socket.messages("ping").length, 2);
    await h.clock.advance(25000); // no pong this time
    assert.deepEqual(socket.closedWith, { code: 4100, reason: "no heartbeat" });
    await h.clock.advance(1000);
    assert.equal(h.sockets.length, 2);
});

test("stop closes the connection and reconnects no more", async () => {
    const h = harness();
    const socket = await h.connect();
    h.client.stop();
    assert.deepEqual(socket.closedWith, { code: 1000, reason: "console closed" });
    socket.serverClose(1000);
    assert.deepEqual(h.clock.pending(), []);
    assert.equal(h.client.state(), "stopped");
});

test("messages of unknown types from a newer gateway are ignored", async () => {
    const h = harness();
    const socket = await h.connect();
    socket.deliver({ type: "something_new", value: 1 });
    socket.onmessage({ data: "not json" });
    await settle();
    assert.equal(h.client.state(), "connected");
});

test("platform-event transport: applies its own user's events, skips the others", async () => {
    const omni = fakeOmni();
    const applier = core.createApplier({ omni, userId: USER });
    const receiver = core.createPlatformEventReceiver({ applier, userId: USER });
    const event = (user, id, statusId) => ({
        data: { payload: { UserId__c: user, StatusId__c: statusId, CommandId__c: id, Reason__c: "sync", CreatedDate: "2026-11-25T10:00:00.000Z" } }
    });
    assert.equal(await receiver.onMessage(event(OTHER_USER, "x", BREAK)), null);
    assert.equal((await receiver.onMessage(event(USER.substring(0, 15), "y", BREAK))).outcome, "applied");
    assert.equal((await receiver.onMessage(event(USER, "y", BREAK))).reason, "duplicate");
    assert.equal((await receiver.onMessage(event(USER, "z", "0"))).outcome, "applied");
    assert.deepEqual(omni.calls, [["set", "0N5000000000003"], ["logout"]]);
});
