({
    // Thin adapters: every decision is in the static resource PresenceSyncCore.
    onScriptsLoaded: function (component, event, helper) {
        helper.start(component);
    },

    onDestroy: function (component, event, helper) {
        helper.stop(component);
    },

    onStatusChanged: function (component, event, helper) {
        helper.forward(component, "statusChanged", {
            statusId: event.getParam("statusId"),
            statusName: event.getParam("statusName"),
            statusApiName: event.getParam("statusApiName"),
            reason: event.getParam("reason")
        });
    },

    onLogout: function (component, event, helper) {
        helper.forward(component, "loggedOut", { reason: event.getParam("reason") });
    }
})
