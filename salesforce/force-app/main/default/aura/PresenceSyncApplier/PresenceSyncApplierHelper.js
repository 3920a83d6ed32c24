({
    CHANNEL: "/event/Presence_Sync_Command__e",
    // StatusId__c "0" means Offline: log the agent out of Omni-Channel.
    OFFLINE: "0",
    // -1: only events published from now on. A command sent while this console was closed is stale:
    // presence-sync notices that no status change followed and retries or reports it.
    NEW_EVENTS_ONLY: -1,

    subscribe: function (component) {
        var helper = this;
        var empApi = component.find("empApi");
        empApi.onError($A.getCallback(function (error) {
            console.error("Presence Sync Applier: streaming error", JSON.stringify(error));
        }));
        empApi.subscribe(this.CHANNEL, this.NEW_EVENTS_ONLY, $A.getCallback(function (message) {
            helper.apply(component, message && message.data ? message.data.payload : null);
        })).then($A.getCallback(function (subscription) {
            component.set("v.subscription", subscription);
        }));
    },

    unsubscribe: function (component) {
        var subscription = component.get("v.subscription");
        if (subscription) {
            component.find("empApi").unsubscribe(subscription, $A.getCallback(function () {
                component.set("v.subscription", null);
            }));
        }
    },

    apply: function (component, command) {
        // Every console receives every command: act only on those for the running user.
        if (!command || !this.sameUser(command.UserId__c, $A.get("$SObjectType.CurrentUser.Id"))) {
            return;
        }
        var omni = component.find("omniToolkit");
        var commandId = command.CommandId__c;
        var applied = command.StatusId__c === this.OFFLINE
            ? omni.logout()
            // setServicePresenceStatus also logs the agent in to Omni-Channel when they are offline.
            : omni.setServicePresenceStatus({ statusId: command.StatusId__c.substring(0, 15) });
        applied.then($A.getCallback(function () {
            console.info("Presence Sync Applier: applied command " + commandId);
        })).catch($A.getCallback(function (error) {
            // Typically a status the user's profile has no access to: presence-sync sees no new
            // presence spell and records the write as failed with that likely cause.
            console.error("Presence Sync Applier: command " + commandId + " failed", JSON.stringify(error));
        }));
    },

    sameUser: function (commandUserId, currentUserId) {
        // Ids come as 15 or 18 characters; the first 15 identify the record.
        return !!commandUserId && !!currentUserId && commandUserId.substring(0, 15) === currentUserId.substring(0, 15);
    }
})
