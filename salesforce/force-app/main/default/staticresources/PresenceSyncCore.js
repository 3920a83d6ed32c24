/*
 * Presence Sync Core: the logic of the Presence Sync Applier, in plain JavaScript.
 *
 * No Salesforce globals here: the Aura component (aura/PresenceSyncApplier) hands in the Omni
 * toolkit, the Apex token call, the WebSocket constructor, timers and storage, and forwards the
 * Omni-Channel console events. Node's test runner tests this file with fakes of each
 * (salesforce/tests/js). Loaded in Lightning as the static resource PresenceSyncCore (ltng:require),
 * it defines window.PresenceSyncCore; under Node, module.exports.
 *
 * Protocol (the gateway's side is connectors/console/protocol.py): one WebSocket, JSON frames.
 *   -> hello {protocol, token}         <- welcome {token_expires_at, heartbeat_seconds}
 *   <- command {command_id, issued_at, user_id, action: set_status|logout, status_id, status, if_showing?}
 *   -> ack {command_id, outcome: applied|failed|ignored, status | error | reason}
 *   -> status_changed {event: status_changed|logout, status, reason, at, command_id?}
 *   -> renew {token}                   <- renewed {token_expires_at}
 *   -> ping                            <- pong
 */
(function (root, factory) {
    "use strict";
    var api = factory();
    if (typeof module === "object" && module.exports) {
        module.exports = api;
    } else {
        root.PresenceSyncCore = api;
    }
})(typeof window !== "undefined" ? window : this, function () {
    "use strict";

    var PROTOCOL = 1;
    var CLIENT = "PresenceSyncApplier/2";
    var TOOLKIT_REASON = "OmniToolkitStatusChange";
    var NOT_AS_EXPECTED = "not as expected"; // an ack reason: a compare-and-set command's status was not shown
    // The gateway's close codes (connectors/console/protocol.py CloseCode).
    var CLOSE = {
        NORMAL: 1000,
        GOING_AWAY: 1001,
        BAD_MESSAGE: 4000,
        TOKEN_EXPIRED: 4001,
        AUTH_TIMEOUT: 4002,
        TOKEN_INVALID: 4003,
        TOKEN_REPLAYED: 4004,
        UNKNOWN_TYPE: 4005,
        MESSAGE_TOO_BIG: 4006,
        RATE_LIMITED: 4007,
        WRONG_USER: 4008,
        PROTOCOL_UNSUPPORTED: 4009,
        REPLACED: 4010,
        NO_HEARTBEAT: 4100 // ours, when the gateway stops answering pings
    };
    // After these the component stops: retrying cannot help (an incompatible gateway, or a newer
    // console of the same agent took over).
    var STOP_CODES = [CLOSE.PROTOCOL_UNSUPPORTED, CLOSE.REPLACED];
    var OWN_CHANGE_WINDOW_MS = 15000;
    var REMEMBERED_COMMANDS = 200;

    function sameRecord(left, right) {
        // Salesforce Ids come as 15 or 18 characters; the first 15 identify the record.
        return !!left && !!right && String(left).substring(0, 15) === String(right).substring(0, 15);
    }

    function describeError(error) {
        if (error === null || error === undefined) {
            return "the Omni-Channel toolkit gave no error text";
        }
        if (typeof error === "string") {
            return error;
        }
        if (error.message) {
            return String(error.message);
        }
        if (Array.isArray(error) && error.length) {
            return describeError(error[0]);
        }
        try {
            return JSON.stringify(error).substring(0, 500);
        } catch (ignored) {
            return String(error);
        }
    }

    function memoryStorage() {
        var values = {};
        return {
            getItem: function (key) {
                return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : null;
            },
            setItem: function (key, value) {
                values[key] = String(value);
            }
        };
    }

    var silentLog = { info: function () {}, warn: function () {}, error: function () {} };

    /*
     * The idempotent applier: applies one command at a time through the Omni toolkit and answers
     * what became of it. A command id it already handled is `ignored` (duplicate); a command issued
     * before the newest one it applied is `ignored` (stale); a command with `if_showing` (compare-and-set:
     * the status names it may apply over, null for logged out) finding another status shown is
     * `ignored` (not as expected), with the status shown. What it handled is kept in `storage`
     * (localStorage in the console), so a page reload does not apply a redelivered command again.
     *
     *   var applier = createApplier({omni: omniToolkit, userId: "005..."});
     *   applier.apply(command).then(function (ack) { socket.send(JSON.stringify(ack)); });
     */
    function createApplier(options) {
        var omni = options.omni;
        var userId = options.userId;
        var storage = options.storage || memoryStorage();
        var now = options.now || Date.now;
        var log = options.log || silentLog;
        var key = "presenceSync.applier." + String(userId || "").substring(0, 15);
        var memory = load();
        var expected = null; // the Omni change our command in flight should cause
        var queue = Promise.resolve();
        // When the agent (or a supervisor, a timeout) last changed the status in this console: a command
        // received before that would undo the person's later choice (setServicePresenceStatus even logs
        // a logged-out agent back in), so it is ignored; the sync decides again from the pushed change.
        var lastOtherChangeAt = null;

        function load() {
            try {
                var saved = JSON.parse(storage.getItem(key) || "null");
                if (saved && Array.isArray(saved.handled)) {
                    return saved;
                }
            } catch (ignored) {
                // unreadable: start afresh; the gateway's own dedupe still holds
            }
            return { latest: null, handled: [] };
        }

        function save() {
            try {
                storage.setItem(key, JSON.stringify(memory));
            } catch (error) {
                log.warn("Presence Sync: cannot remember handled commands", describeError(error));
            }
        }

        function handled(commandId) {
            for (var index = 0; index < memory.handled.length; index++) {
                if (memory.handled[index].id === commandId) {
                    return memory.handled[index];
                }
            }
            return null;
        }

        function remember(command, outcome, status) {
            memory.handled.push({ id: command.command_id, outcome: outcome, status: status || null });
            if (memory.handled.length > REMEMBERED_COMMANDS) {
                memory.handled.splice(0, memory.handled.length - REMEMBERED_COMMANDS);
            }
            if (outcome === "applied") {
                memory.latest = { id: command.command_id, issuedAt: Date.parse(command.issued_at) };
            }
            save();
        }

        function ack(command, outcome, fields) {
            var message = { type: "ack", command_id: command.command_id, outcome: outcome };
            for (var name in fields) {
                if (Object.prototype.hasOwnProperty.call(fields, name)) {
                    message[name] = fields[name];
                }
            }
            return message;
        }

        function statusFrom(result) {
            if (!result || !result.statusId) {
                return null;
            }
            return { status_id: result.statusId, status: result.statusApiName || null, label: result.statusName || null };
        }

        function applyNow(command, receivedAt) {
            var previous = handled(command.command_id);
            if (previous) {
                return Promise.resolve(ack(command, "ignored", {
                    reason: "duplicate", status: previous.status, original_outcome: previous.outcome
                }));
            }
            if (!sameRecord(command.user_id, userId)) {
                remember(command, "failed");
                return Promise.resolve(ack(command, "failed", { error: "command for another user than this console's" }));
            }
            var issuedAt = Date.parse(command.issued_at);
            if (isNaN(issuedAt)) {
                remember(command, "failed");
                return Promise.resolve(ack(command, "failed", { error: "command without a valid issued_at" }));
            }
            if (memory.latest && issuedAt < memory.latest.issuedAt) {
                remember(command, "ignored");
                return Promise.resolve(ack(command, "ignored", { reason: "stale", newer_command_id: memory.latest.id }));
            }
            if (lastOtherChangeAt !== null && lastOtherChangeAt >= receivedAt) {
                remember(command, "ignored");
                return Promise.resolve(ack(command, "ignored", { reason: "superseded by the agent's own change" }));
            }
            if (!Array.isArray(command.if_showing)) {
                return act(command);
            }
            return shownStatus().then(function (shown) {
                if (command.if_showing.indexOf(shown ? shown.status : null) < 0) {
                    // The agent (a supervisor, a push timeout) changed it after the sync decided: leave their
                    // choice; the sync decides again from their change.
                    remember(command, "ignored");
                    return ack(command, "ignored", { reason: NOT_AS_EXPECTED, status: shown });
                }
                return act(command);
            });
        }

        // What the console shows now; null when logged out of Omni-Channel (the toolkit's promise is
        // rejected then, or names no status: the docs say neither, so both are read as logged out).
        function shownStatus() {
            return Promise.resolve()
                .then(function () {
                    return omni.getServicePresenceStatusId();
                })
                .then(statusFrom, function () {
                    return null;
                });
        }

        function act(command) {
            var applying;
            if (command.action === "set_status" && command.status_id) {
                expected = { commandId: command.command_id, statusId: command.status_id, logout: false, until: now() + OWN_CHANGE_WINDOW_MS };
                // setServicePresenceStatus also logs the agent in to Omni-Channel when they are offline.
                applying = omni.setServicePresenceStatus({ statusId: String(command.status_id).substring(0, 15) })
                    .then(function (result) {
                        var status = statusFrom(result) || { status_id: command.status_id, status: command.status || null, label: null };
                        remember(command, "applied", status);
                        return ack(command, "applied", { status: status });
                    });
            } else if (command.action === "logout") {
                expected = { commandId: command.command_id, statusId: null, logout: true, until: now() + OWN_CHANGE_WINDOW_MS };
                applying = omni.logout().then(function (result) {
                    if (result === false) {
                        throw new Error("Omni-Channel logout did not succeed");
                    }
                    remember(command, "applied", null);
                    return ack(command, "applied", { status: null });
                });
            } else {
                remember(command, "failed");
                return Promise.resolve(ack(command, "failed", { error: "unknown action " + JSON.stringify(command.action) }));
            }
            return applying.catch(function (error) {
                // Typically a status the agent's profile has no access to: the toolkit's own words go back.
                expected = null;
                remember(command, "failed");
                return ack(command, "failed", { error: describeError(error) });
            });
        }

        return {
            /* Apply one command (in arrival order); resolves to the ack to send, or null if unusable. */
            apply: function (command) {
                if (!command || typeof command.command_id !== "string" || !command.command_id) {
                    log.warn("Presence Sync: a command without command_id was dropped");
                    return Promise.resolve(null);
                }
                var receivedAt = now();
                var result = queue.then(function () {
                    return applyNow(command, receivedAt);
                });
                queue = result.catch(function () {});
                return result;
            },

            /*
             * Which of our commands caused this Omni event, if any: a toolkit change to the status we
             * just set, or a logout right after our logout. Anything else is somebody else's change.
             */
            ownChange: function (kind, statusId, reason) {
                if (!expected || now() > expected.until) {
                    expected = null;
                    lastOtherChangeAt = now();
                    return null;
                }
                var ours = kind === "logout"
                    ? expected.logout
                    : !expected.logout && reason === TOOLKIT_REASON && sameRecord(statusId, expected.statusId);
                if (!ours) {
                    lastOtherChangeAt = now();
                    return null;
                }
                var commandId = expected.commandId;
                expected = null;
                return commandId;
            }
        };
    }

    function backoffDelay(attempt, random, initialMs, maxMs) {
        // Exponential with jitter (half to all of the step), so 10,000 consoles don't return at once.
        var step = Math.min(maxMs, initialMs * Math.pow(2, attempt));
        return Math.round(step / 2 + random() * step / 2);
    }

    /*
     * The connection to the console gateway: authenticates with a token from Apex, applies the
     * commands it receives, acknowledges them, pushes the agent's status changes, renews the token
     * before it expires, answers nothing it does not know, and reconnects with backoff.
     *
     *   var client = createConsoleClient({applier, fetchGrant, openSocket: function (url) { return new WebSocket(url); }});
     *   client.start();  client.statusChanged({statusId, statusApiName, statusName, reason});
     */
    function createConsoleClient(options) {
        var applier = options.applier;
        var fetchGrant = options.fetchGrant; // -> Promise<{token, gatewayUrl}>
        var openSocket = options.openSocket;
        var wrap = options.wrap || function (callback) { return callback; }; // $A.getCallback in Aura
        var setTimer = options.setTimeout || function (callback, ms) { return setTimeout(callback, ms); };
        var clearTimer = options.clearTimeout || function (timer) { clearTimeout(timer); };
        var now = options.now || Date.now;
        var random = options.random || Math.random;
        var log = options.log || silentLog;
        var onState = options.onStateChange || function () {};
        var initialBackoffMs = options.initialBackoffMs || 1000;
        var maxBackoffMs = options.maxBackoffMs || 60000;
        var renewRetryMs = options.renewRetryMs || 15000;

        var state = "idle";
        var socket = null;
        var attempt = 0;
        var timers = {};
        var tokenExpiresAt = 0;
        var heartbeatMs = 0;
        var unsent = []; // status changes seen while disconnected (only the latest matters, but keep order)

        function setState(next, detail) {
            state = next;
            onState(next, detail || "");
        }

        function later(name, ms, callback) {
            cancel(name);
            timers[name] = setTimer(wrap(function () {
                delete timers[name];
                callback();
            }), Math.max(0, ms));
        }

        function cancel(name) {
            if (timers[name] !== undefined) {
                clearTimer(timers[name]);
                delete timers[name];
            }
        }

        function cancelAll() {
            Object.keys(timers).forEach(cancel);
        }

        function send(message) {
            if (socket && state === "connected") {
                socket.send(JSON.stringify(message));
                return true;
            }
            return false;
        }

        function connect() {
            if (state === "stopped") {
                return;
            }
            setState("connecting");
            fetchGrant().then(wrap(function (grant) {
                if (state === "stopped") {
                    return;
                }
                var current = openSocket(grant.gatewayUrl);
                socket = current;
                current.onopen = wrap(function () {
                    if (socket === current) {
                        current.send(JSON.stringify({ type: "hello", protocol: PROTOCOL, token: grant.token, client: CLIENT }));
                    }
                });
                current.onmessage = wrap(function (event) {
                    if (socket === current) {
                        receive(event.data);
                    }
                });
                current.onerror = wrap(function () {
                    log.warn("Presence Sync: gateway connection error");
                });
                current.onclose = wrap(function (event) {
                    if (socket === current) {
                        closed(event.code, event.reason);
                    }
                });
            }), wrap(function (error) {
                log.error("Presence Sync: no gateway token", describeError(error));
                reconnectLater("no token: " + describeError(error));
            }));
        }

        function receive(data) {
            var message;
            try {
                message = JSON.parse(data);
            } catch (error) {
                log.warn("Presence Sync: unreadable message from the gateway");
                return;
            }
            if (message.type === "welcome") {
                attempt = 0;
                tokenExpiresAt = Date.parse(message.token_expires_at);
                heartbeatMs = (message.heartbeat_seconds || 25) * 1000;
                setState("connected", message.connection_id);
                scheduleRenewal();
                later("heartbeat", heartbeatMs, heartbeat);
                var pending = unsent;
                unsent = [];
                pending.forEach(send);
            } else if (message.type === "command") {
                applier.apply(message).then(wrap(function (ack) {
                    if (ack) {
                        send(ack); // lost if the connection dropped: the gateway redelivers, we answer "duplicate"
                        log.info("Presence Sync: command " + ack.command_id + " " + ack.outcome);
                    }
                }));
            } else if (message.type === "renewed") {
                tokenExpiresAt = Date.parse(message.token_expires_at);
                scheduleRenewal();
            } else if (message.type === "pong") {
                cancel("pongDeadline");
            }
            // Anything else is from a newer gateway: ignore it.
        }

        function scheduleRenewal() {
            var remaining = tokenExpiresAt - now();
            // Renew with a third of the lifetime (at least a minute) to spare.
            var lead = Math.max(60000, remaining / 3);
            later("renew", remaining - lead, renew);
        }

        function renew() {
            fetchGrant().then(wrap(function (grant) {
                send({ type: "renew", token: grant.token });
            }), wrap(function (error) {
                log.warn("Presence Sync: token renewal failed, retrying", describeError(error));
                if (now() + renewRetryMs < tokenExpiresAt) {
                    later("renew", renewRetryMs, renew);
                }
            }));
        }

        function heartbeat() {
            if (send({ type: "ping" })) {
                later("pongDeadline", heartbeatMs, function () {
                    log.warn("Presence Sync: the gateway stopped answering; reconnecting");
                    var dead = socket;
                    closed(CLOSE.NO_HEARTBEAT, "no heartbeat");
                    try {
                        dead.close(CLOSE.NO_HEARTBEAT, "no heartbeat");
                    } catch (ignored) {
                        // already closing
                    }
                });
                later("heartbeat", heartbeatMs, heartbeat);
            }
        }

        function closed(code, reason) {
            socket = null;
            cancelAll();
            if (state === "stopped") {
                return;
            }
            if (STOP_CODES.indexOf(code) >= 0) {
                log.error("Presence Sync: gateway closed the connection for good (" + code + " " + reason + ")");
                setState("stopped", code + " " + reason);
                return;
            }
            if (code === CLOSE.RATE_LIMITED) {
                attempt = Math.max(attempt, 3);
            }
            reconnectLater(code + " " + (reason || ""));
        }

        function reconnectLater(why) {
            var delay = backoffDelay(attempt, random, initialBackoffMs, maxBackoffMs);
            attempt += 1;
            setState("waiting", why);
            later("reconnect", delay, connect);
        }

        function push(message) {
            if (!send(message)) {
                unsent.push(message);
                if (unsent.length > 20) {
                    unsent.shift();
                }
            }
        }

        return {
            start: function () {
                if (state === "idle") {
                    connect();
                }
            },
            stop: function () {
                var open = socket;
                setState("stopped");
                socket = null;
                cancelAll();
                if (open) {
                    open.close(CLOSE.NORMAL, "console closed");
                }
            },
            state: function () {
                return state;
            },
            /* lightning:omniChannelStatusChanged */
            statusChanged: function (event) {
                push({
                    type: "status_changed",
                    event: "status_changed",
                    status: { status_id: event.statusId, status: event.statusApiName || null, label: event.statusName || null },
                    reason: event.reason || null,
                    at: new Date(now()).toISOString(),
                    command_id: applier.ownChange("status_changed", event.statusId, event.reason)
                });
            },
            /* lightning:omniChannelLogout */
            loggedOut: function (event) {
                push({
                    type: "status_changed",
                    event: "logout",
                    status: null,
                    reason: (event && event.reason) || null,
                    at: new Date(now()).toISOString(),
                    command_id: applier.ownChange("logout", null, event && event.reason)
                });
            }
        };
    }

    /*
     * The platform-event transport (small orgs without a reachable gateway; see salesforce/README.md):
     * every console receives every Presence_Sync_Command__e, keeps its own user's, applies them with
     * the same applier. There is no way back: outcomes are only logged.
     */
    function commandFromPlatformEvent(message) {
        var payload = message && message.data && message.data.payload;
        if (!payload || !payload.CommandId__c) {
            return null;
        }
        var offline = payload.StatusId__c === "0";
        return {
            command_id: payload.CommandId__c,
            user_id: payload.UserId__c,
            action: offline ? "logout" : "set_status",
            status_id: offline ? null : payload.StatusId__c,
            status: null,
            issued_at: payload.CreatedDate
        };
    }

    function createPlatformEventReceiver(options) {
        var applier = options.applier;
        var userId = options.userId;
        var log = options.log || silentLog;
        return {
            onMessage: function (message) {
                var command = commandFromPlatformEvent(message);
                if (!command || !sameRecord(command.user_id, userId)) {
                    return Promise.resolve(null);
                }
                return applier.apply(command).then(function (ack) {
                    if (ack) {
                        log.info("Presence Sync: command " + ack.command_id + " " + ack.outcome, ack.error || ack.reason || "");
                    }
                    return ack;
                });
            }
        };
    }

    return {
        PROTOCOL: PROTOCOL,
        CLOSE: CLOSE,
        TOOLKIT_REASON: TOOLKIT_REASON,
        createApplier: createApplier,
        createConsoleClient: createConsoleClient,
        createPlatformEventReceiver: createPlatformEventReceiver,
        commandFromPlatformEvent: commandFromPlatformEvent,
        backoffDelay: backoffDelay,
        describeError: describeError,
        memoryStorage: memoryStorage
    };
});
