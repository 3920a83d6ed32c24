({
    onInit: function (component, event, helper) {
        helper.subscribe(component);
    },

    onDestroy: function (component, event, helper) {
        helper.unsubscribe(component);
    }
})
