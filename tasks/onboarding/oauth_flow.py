"""Step 4, OAuth flow: check that the configured flow logs in and its token works on the data API.

With the username-password flow, Salesforce answers `authentication failure` alike for bad credentials,
the org setting "Allow OAuth Username-Password Flows" off, and MFA enforced on the user; the connector's
error names all three and where each is fixed. Whatever happens, a password-flow config is warned that
Salesforce retires the flow on 2027-02-20.

    plan = await plan_oauth_flow(ctx)
    plan.items[0].reason     # "the password flow works: logged in as integration@example.com ..."
"""

from __future__ import annotations

from presence_sync.connectors import AuthenticationError, InvalidCredentials
from presence_sync.connectors.salesforce_auth import USERNAME_PASSWORD_RETIREMENT
from presence_sync.tasks.context import Context
from presence_sync.tasks.onboarding.connected_app import CHECK_NOUN
from presence_sync.tasks.onboarding.model import NOTHING_UPCOMING, Action, PlanItem, StepName, StepPlan, Upcoming
from presence_sync.tasks.onboarding.salesforce_setup import verify_salesforce_login

PASSWORD_FLOW_RETIREMENT_WARNING = (
    f"Salesforce retires the OAuth username-password flow on {USERNAME_PASSWORD_RETIREMENT}: move to the "
    "client_credentials flow (an External Client App with 'Enable Client Credentials Flow' and a Run As user; "
    "login_url must be your My Domain) or the jwt flow (a certificate on the app). Neither needs MFA turned "
    "off nor 'Allow OAuth Username-Password Flows'."
)


async def plan_oauth_flow(ctx: Context, upcoming: Upcoming = NOTHING_UPCOMING) -> StepPlan:
    """Log in with the configured flow and query our own user with the token (reads only)."""
    flow = ctx.config.salesforce.auth.flow
    subject = f"{flow} flow"
    notes = (PASSWORD_FLOW_RETIREMENT_WARNING,) if flow == "password" else ()
    try:
        login = await verify_salesforce_login(ctx.salesforce)
    except AuthenticationError as error:
        reason = str(error)
        if flow == "password" and isinstance(error, InvalidCredentials) and error.error_code == "invalid_grant":
            reason += "\n" + password_refusal_fixes(ctx.config.salesforce.auth.username)
        item = PlanItem(subject, Action.FAILED, reason)
    else:
        reason = f"works: logged in as {login.username} (user {login.user_id}, org {login.org_id})"
        item = PlanItem(subject, Action.UNCHANGED, reason)
    return StepPlan(step=StepName.OAUTH_FLOW, items=(item,), notes=notes, noun=CHECK_NOUN)


def password_refusal_fixes(username: str) -> str:
    """Where, for this config and user, each cause of a password-flow `authentication failure` is fixed."""
    return (
        f"In this config, cause 1 is salesforce.auth.username ({username}), salesforce.auth.password and "
        "salesforce.auth.security_token. Cause 3 is fixed in Salesforce Setup for that user: take away the "
        "permission 'Multi-Factor Authentication for API Logins' (Setup > Users > the user > its profile and "
        "Permission Set Assignments), or exempt the integration user with 'Waive Multi-Factor Authentication "
        "for Exempt Users' (the org-wide MFA requirement is under Setup > Identity Verification)."
    )
