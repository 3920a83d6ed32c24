"""Step 3, connected app: check that Salesforce accepts the app's consumer key (and secret).

Nothing is written: onboarding can't create a connected app (since Spring '26 a new org can't create
one at all until Salesforce Support enables it), so it checks the one the config names and says what
to do when it is missing.

    plan = await plan_connected_app(ctx)
    plan.preview().summary   # "1 check: 1 unchanged"; plan.items[0].reason says what was verified
"""

from __future__ import annotations

from presence_sync.connectors import AuthenticationError, InvalidClient, InvalidCredentials
from presence_sync.tasks.context import Context
from presence_sync.tasks.onboarding.model import NOTHING_UPCOMING, Action, PlanItem, StepName, StepPlan, StepResult, Upcoming
from presence_sync.tasks.onboarding.salesforce_setup import salesforce_identity

CHECK_NOUN = ("check", "checks")

SPRING_26_GUIDANCE = (
    "Since Spring '26, new Salesforce orgs can't create connected apps until Salesforce Support enables it: "
    "raise a case with Salesforce Support, or instead create an External Client App (Setup > External "
    "Client App Manager) with the client-credentials flow (set salesforce.auth.flow: client_credentials and "
    "login_url to your My Domain) or the JWT bearer flow (flow: jwt), and put its consumer key and secret in "
    "the config."
)


async def plan_connected_app(ctx: Context, upcoming: Upcoming = NOTHING_UPCOMING) -> StepPlan:
    """The app is fine if Salesforce issued this run a token, or if it refuses only the user's login."""
    app = ctx.config.connected_app
    subject = f"connected app '{app.name}'" if app else "connected app"
    try:
        identity = await salesforce_identity(ctx.salesforce)
    except InvalidClient as error:
        if error.error_code == "invalid_client_id":
            reason = (
                "Salesforce does not know its consumer key (salesforce.auth.client_id): the app is missing in "
                f"this org, or the key is mistyped or from another org. {SPRING_26_GUIDANCE}"
            )
            return _check(PlanItem(subject, Action.FAILED, reason), notes=(SPRING_26_GUIDANCE,))
        return _check(PlanItem(subject, Action.FAILED, str(error)))
    except InvalidCredentials as error:
        if error.status_code is None:  # refused before any request, e.g. an unusable JWT key
            return _check(PlanItem(subject, Action.FAILED, str(error)))
        # Salesforce checks the client before the user: the app is fine, the login is oauth-flow's business.
        reason = "Salesforce accepted the consumer key; it refused the login itself (see oauth-flow)"
        return _check(PlanItem(subject, Action.UNCHANGED, reason))
    except AuthenticationError as error:
        return _check(PlanItem(subject, Action.FAILED, str(error)))
    reason = f"Salesforce accepted the consumer key and issued a token (org {identity.org_id})"
    return _check(PlanItem(subject, Action.UNCHANGED, reason))


async def apply_check(ctx: Context, plan: StepPlan) -> StepResult:
    """A check writes nothing: applying it reports what it found."""
    return plan.result()


def _check(item: PlanItem, notes: tuple[str, ...] = ()) -> StepPlan:
    return StepPlan(step=StepName.CONNECTED_APP, items=(item,), notes=notes, noun=CHECK_NOUN)
