({
    // One running applier per component instance (a helper is shared by every instance).
    running: {},

    start: function (component) {
        var helper = this;
        var core = window.PresenceSyncCore;
        if (!core) {
            helper.show(component, "error", "the PresenceSyncCore static resource did not load");
            return;
        }
        var userId = $A.get("$SObjectType.CurrentUser.Id");
        var applier = core.createApplier({
            omni: component.find("omniToolkit"),
            userId: userId,
            storage: helper.storage(),
            log: console
        });
        var running = { applier: applier };
        if (component.get("v.transport") === "platformEvent") {
            running.receiver = core.createPlatformEventReceiver({ applier: applier, userId: userId, log: console });
            helper.subscribe(component, running);
        } else {
            running.client = core.createConsoleClient({
                applier: applier,
                fetchGrant: function () {
                    return helper.fetchGrant(component);
                },
                openSocket: function (url) {
                    return new WebSocket(url);
                },
                wrap: $A.getCallback,
                log: console,
                onStateChange: function (state, detail) {
                    helper.show(component, state, detail);
                }
            });
            running.client.start();
        }
        helper.running[component.getGlobalId()] = running;
    },

    stop: function (component) {
        var running = this.running[component.getGlobalId()];
        delete this.running[component.getGlobalId()];
        if (running && running.client) {
            running.client.stop();
        }
        if (running && running.subscription) {
            component.find("empApi").unsubscribe(running.subscription, function () {});
        }
    },

    forward: function (component, method, event) {
        var running = this.running[component.getGlobalId()];
        if (running && running.client) {
            running.client[method](event);
        }
    },

    fetchGrant: function (component) {
        var helper = this;
        return new Promise(function (resolve, reject) {
            var action = component.get("c.mint");
            action.setCallback(helper, function (response) {
                if (response.getState() === "SUCCESS") {
                    resolve(response.getReturnValue());
                } else {
                    var errors = response.getError() || [];
                    reject(errors.length && errors[0].message ? errors[0].message : response.getState());
                }
            });
            $A.enqueueAction(action);
        });
    },

    subscribe: function (component, running) {
        var helper = this;
        var empApi = component.find("empApi");
        empApi.onError($A.getCallback(function (error) {
            helper.show(component, "error", JSON.stringify(error));
        }));
        // -1: new events only; a command published while this console was closed is not applied.
        empApi.subscribe("/event/Presence_Sync_Command__e", -1, $A.getCallback(function (message) {
            running.receiver.onMessage(message);
        })).then($A.getCallback(function (subscription) {
            running.subscription = subscription;
            helper.show(component, "subscribed", "Presence_Sync_Command__e");
        }));
    },

    storage: function () {
        try {
            return window.localStorage;
        } catch (unavailable) {
            return null; // the core keeps what it handled in memory instead
        }
    },

    show: function (component, state, detail) {
        if (component.isValid()) {
            component.set("v.connectionState", state);
            component.set("v.detail", detail || "");
        }
    }
})
