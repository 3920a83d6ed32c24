// Drives the component's real logic (PresenceSyncCore.js) against a running gateway, for
// test_component_against_gateway.py. Reads one JSON line from stdin: {url, tokens, userId, denied};
// prints one JSON line per state change; stops the client when stdin closes.
"use strict";

const path = require("node:path");
const readline = require("node:readline");
const core = require(path.join(__dirname, "../../salesforce/force-app/main/default/staticresources/PresenceSyncCore.js"));

const lines = readline.createInterface({ input: process.stdin });
let client = null;

lines.once("line", (line) => {
    const config = JSON.parse(line);
    const tokens = config.tokens.slice();
    const names = config.names || {};
    const omni = {
        setServicePresenceStatus({ statusId }) {
            if ((config.denied || []).some((id) => id.startsWith(statusId))) {
                return Promise.reject({ message: "No access to presence status " + statusId });
            }
            const result = { statusId, statusApiName: names[statusId] || null, statusName: names[statusId] || null };
            // Omni tells every component of the change our call made, with the toolkit's reason.
            setImmediate(() => client.statusChanged(Object.assign({ reason: "OmniToolkitStatusChange" }, result)));
            return Promise.resolve(result);
        },
        logout() {
            setImmediate(() => client.loggedOut({}));
            return Promise.resolve(true);
        }
    };
    client = core.createConsoleClient({
        applier: core.createApplier({ omni, userId: config.userId }),
        fetchGrant: () => (tokens.length
            ? Promise.resolve({ token: tokens.shift(), gatewayUrl: config.url })
            : Promise.reject(new Error("no more tokens"))),
        openSocket: (url) => new WebSocket(url),
        onStateChange: (state, detail) => console.log(JSON.stringify({ state, detail })),
        initialBackoffMs: 100
    });
    client.start();
    lines.on("line", (more) => {
        const event = JSON.parse(more);
        client.statusChanged(event); // a manual change the test asks for
    });
});
lines.on("close", () => {
    if (client) {
        client.stop();
    }
    setTimeout(() => process.exit(0), 100);
});
