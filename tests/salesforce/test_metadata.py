"""The SFDX project under salesforce/ is complete and consistent enough for `sf project deploy start`.

No org here: these checks catch what a deploy (or the component at run time) would reject later —
malformed XML, a handler or attribute the markup names but nobody defines, a field the code reads
that the object lacks, an Apex class without its test or API version, a permission set that grants
something that does not exist or forgets what the component needs.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import pytest

SALESFORCE = Path(__file__).resolve().parents[2] / "salesforce"
SOURCE = SALESFORCE / "force-app" / "main" / "default"
NS = "{http://soap.sforce.com/2006/04/metadata}"
COMPONENT = SOURCE / "aura" / "PresenceSyncApplier"
CORE = SOURCE / "staticresources" / "PresenceSyncCore.js"
TOKEN_CLASS = SOURCE / "classes" / "PresenceSyncGatewayToken.cls"
GATEWAY_OBJECT = "Presence_Sync_Gateway__c"
COMMAND_EVENT = "Presence_Sync_Command__e"

# Which root element each kind of source file has (source format: folder, file suffix).
ROOTS = {
    ".cls-meta.xml": "ApexClass",
    ".cmp-meta.xml": "AuraDefinitionBundle",
    ".object-meta.xml": "CustomObject",
    ".field-meta.xml": "CustomField",
    ".permissionset-meta.xml": "PermissionSet",
    ".resource-meta.xml": "StaticResource",
    ".tab-meta.xml": "CustomTab",
}
# Aura markup uses namespace prefixes it never declares; declare them to check well-formedness.
AURA_PREFIXES = ("aura", "lightning", "ltng", "design", "force", "ui", "c")


def meta_files() -> list[Path]:
    return sorted(SOURCE.rglob("*-meta.xml"))


def root(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def text(element: ET.Element, tag: str) -> str | None:
    found = element.find(NS + tag)
    return found.text if found is not None else None


def parse_markup(path: Path) -> ET.Element:
    source = path.read_text()
    declarations = " ".join(f'xmlns:{prefix}="urn:{prefix}"' for prefix in AURA_PREFIXES)
    source = re.sub(r"<(aura:component|design:component)\b", lambda m: f"<{m.group(1)} {declarations}", source, count=1)
    return ET.fromstring(source)


@cache
def project() -> dict[str, object]:
    return json.loads((SALESFORCE / "sfdx-project.json").read_text())


def object_fields(sobject: str) -> dict[str, ET.Element]:
    return {path.name.removesuffix(".field-meta.xml"): root(path)
            for path in (SOURCE / "objects" / sobject / "fields").glob("*.field-meta.xml")}


def js_functions(path: Path) -> set[str]:
    """The property names of an Aura controller's or helper's object literal."""
    return set(re.findall(r"^    (\w+)\s*:", path.read_text(), re.MULTILINE))


# ---- every file parses and is what its name says


@pytest.mark.parametrize("path", meta_files(), ids=lambda path: str(path.relative_to(SOURCE)))
def test_every_metadata_file_parses_with_the_root_its_suffix_promises(path: Path) -> None:
    suffix = next((suffix for suffix in ROOTS if path.name.endswith(suffix)), None)
    assert suffix is not None, f"{path.name}: a metadata kind these checks don't know; add it to ROOTS"
    assert root(path).tag == NS + ROOTS[suffix]


@pytest.mark.parametrize("path", sorted([*SOURCE.rglob("*.cmp"), *SOURCE.rglob("*.design")]), ids=lambda p: p.name)
def test_aura_markup_is_well_formed(path: Path) -> None:
    parse_markup(path)


def test_sfdx_project_is_valid_and_api_versions_agree() -> None:
    data = project()
    directories = data["packageDirectories"]
    assert isinstance(directories, list) and [d for d in directories if d.get("default")], "one default package directory"
    for directory in directories:
        assert (SALESFORCE / directory["path"]).is_dir(), directory
    version = data["sourceApiVersion"]
    assert re.fullmatch(r"\d{2}\.0", str(version))
    versioned = [path for path in meta_files() if path.name.endswith((".cls-meta.xml", ".cmp-meta.xml"))]
    assert versioned
    for path in versioned:
        assert text(root(path), "apiVersion") == version, f"{path.name}: apiVersion should be {version}"


# ---- the component


def test_the_component_markup_names_only_what_exists() -> None:
    markup = (COMPONENT / "PresenceSyncApplier.cmp").read_text()
    tree = parse_markup(COMPONENT / "PresenceSyncApplier.cmp")
    attributes = {element.get("name") for element in tree.iter("{urn:aura}attribute")}
    controller = js_functions(COMPONENT / "PresenceSyncApplierController.js")
    helper_source = (COMPONENT / "PresenceSyncApplierHelper.js").read_text()
    helper = js_functions(COMPONENT / "PresenceSyncApplierHelper.js")

    handlers = set(re.findall(r"\{!\s*c\.(\w+)\s*\}", markup))
    assert handlers and handlers <= controller, f"handlers missing from the controller: {handlers - controller}"
    used = set(re.findall(r"\{!\s*v\.(\w+)\s*\}", markup))
    used |= set(re.findall(r'component\.(?:get|set)\("v\.(\w+)"', helper_source))
    assert used <= attributes, f"attributes used but not declared: {used - attributes}"
    calls = set(re.findall(r"helper\.(\w+)\(", (COMPONENT / "PresenceSyncApplierController.js").read_text()))
    calls |= set(re.findall(r"helper\.(\w+)\(", helper_source))
    assert calls <= helper, f"helper functions missing: {calls - helper}"
    ids = {element.get("{urn:aura}id") for element in tree.iter() if element.get("{urn:aura}id")}
    assert set(re.findall(r'component\.find\("(\w+)"\)', helper_source)) <= ids

    resources = set(re.findall(r"\$Resource\.(\w+)", markup))
    for resource in resources:
        assert list((SOURCE / "staticresources").glob(f"{resource}.*")), f"static resource {resource} missing"
        assert (SOURCE / "staticresources" / f"{resource}.resource-meta.xml").exists()

    apex = tree.get("controller")
    assert apex and (SOURCE / "classes" / f"{apex}.cls").exists()
    apex_source = (SOURCE / "classes" / f"{apex}.cls").read_text()
    for method in re.findall(r'component\.get\("c\.(\w+)"\)', helper_source):
        assert re.search(rf"@AuraEnabled\s+public static \w+ {method}\(", apex_source), f"{apex}.{method} not @AuraEnabled"

    design = parse_markup(COMPONENT / "PresenceSyncApplier.design")
    for attribute in design.iter("{urn:design}attribute"):
        assert attribute.get("name") in attributes


def test_the_component_handles_the_omni_events_and_uses_the_toolkit() -> None:
    tree = parse_markup(COMPONENT / "PresenceSyncApplier.cmp")
    events = {handler.get("event") for handler in tree.iter("{urn:aura}handler")}
    assert {"lightning:omniChannelStatusChanged", "lightning:omniChannelLogout"} <= events
    assert list(tree.iter("{urn:lightning}omniToolkitAPI"))


def test_the_core_is_plain_javascript_without_salesforce_globals() -> None:
    # Code only: the comments may say where things come from.
    source = re.sub(r"/\*.*?\*/|//[^\n]*", "", CORE.read_text(), flags=re.DOTALL)
    for name in ("$A", "component.", "sforce", "Aura", "$Resource", "lightning", "window.localStorage"):
        assert name not in source, f"PresenceSyncCore.js must not touch {name}: the Aura adapter hands things in"
    assert text(root(CORE.with_name("PresenceSyncCore.resource-meta.xml")), "contentType") == "application/javascript"


def test_fields_the_code_reads_exist_on_their_objects() -> None:
    command_fields = set(object_fields(COMMAND_EVENT))
    used_by_core = set(re.findall(r"payload\.(\w+__c)", CORE.read_text()))
    assert used_by_core and used_by_core <= command_fields, used_by_core - command_fields
    assert f"/event/{COMMAND_EVENT}" in (COMPONENT / "PresenceSyncApplierHelper.js").read_text()

    gateway_fields = set(object_fields(GATEWAY_OBJECT))
    apex = TOKEN_CLASS.read_text() + (SOURCE / "classes" / "PresenceSyncGatewayTokenTest.cls").read_text()
    used_by_apex = set(re.findall(r"\b(\w+__c)\b", apex)) - {GATEWAY_OBJECT}
    assert used_by_apex and used_by_apex <= gateway_fields, used_by_apex - gateway_fields


def test_the_secret_is_an_encrypted_field_and_no_field_is_required() -> None:
    fields = object_fields(GATEWAY_OBJECT)
    assert text(fields["Secret__c"], "type") == "EncryptedText"
    assert text(fields["Secret__c"], "maskType") == "all"
    # A required field can't be in a permission set's fieldPermissions: the deploy would fail.
    assert all(text(field, "required") != "true" for field in fields.values())
    assert text(root(SOURCE / "objects" / GATEWAY_OBJECT / f"{GATEWAY_OBJECT}.object-meta.xml"), "sharingModel") == "Private"


# ---- Apex


def test_every_apex_class_has_its_meta_and_a_test_class() -> None:
    classes = sorted((SOURCE / "classes").glob("*.cls"))
    assert {path.stem for path in classes} >= {"PresenceSyncGatewayToken", "PresenceSyncGatewayTokenTest"}
    for path in classes:
        meta = path.with_name(path.name + "-meta.xml")
        assert meta.exists(), f"{path.name} needs {meta.name}"
        assert text(root(meta), "status") == "Active"
        if not path.stem.endswith("Test"):
            test_class = path.with_name(f"{path.stem}Test.cls")
            assert test_class.exists(), f"{path.name} has no test class (production deploys need 75% coverage)"
            source = test_class.read_text()
            assert source.lstrip("/* \n").count("@IsTest") >= 2 and f"{path.stem}." in source


def test_the_token_class_signs_with_hmac_sha256_for_the_running_user() -> None:
    source = TOKEN_CLASS.read_text()
    assert "Crypto.generateMac('hmacSHA256'" in source
    assert "UserInfo.getUserId()" in source and "UserInfo.getOrganizationId()" in source
    assert re.search(r"@AuraEnabled\s+public static Grant mint\(\)", source)
    assert "private without sharing class" in source and "public with sharing class" in source


# ---- permission sets


def permission_set(name: str) -> ET.Element:
    return root(SOURCE / "permissionsets" / f"{name}.permissionset-meta.xml")


def granted_objects(permissions: ET.Element) -> dict[str, ET.Element]:
    return {text(element, "object"): element for element in permissions.findall(NS + "objectPermissions")}


@pytest.mark.parametrize("path", sorted((SOURCE / "permissionsets").glob("*.xml")), ids=lambda path: path.name)
def test_a_permission_set_grants_only_what_exists(path: Path) -> None:
    permissions = root(path)
    assert text(permissions, "label")
    for access in permissions.findall(NS + "classAccesses"):
        assert (SOURCE / "classes" / f"{text(access, 'apexClass')}.cls").exists()
    for sobject in granted_objects(permissions):
        assert (SOURCE / "objects" / sobject).is_dir(), sobject
    for field in permissions.findall(NS + "fieldPermissions"):
        sobject, name = text(field, "field").split(".")
        assert name in object_fields(sobject), f"{sobject}.{name}"
        assert text(object_fields(sobject)[name], "required") != "true"
    for tab in permissions.findall(NS + "tabSettings"):
        assert (SOURCE / "tabs" / f"{text(tab, 'tab')}.tab-meta.xml").exists()


def test_agents_get_the_token_class_and_not_the_secret() -> None:
    agent = permission_set("Presence_Sync_Agent")
    classes = {text(access, "apexClass"): text(access, "enabled") for access in agent.findall(NS + "classAccesses")}
    assert classes.get("PresenceSyncGatewayToken") == "true"
    assert GATEWAY_OBJECT not in granted_objects(agent)
    assert not [field for field in agent.findall(NS + "fieldPermissions") if GATEWAY_OBJECT in text(field, "field")]


def test_admins_can_set_every_gateway_field() -> None:
    admin = permission_set("Presence_Sync_Admin")
    access = granted_objects(admin)[GATEWAY_OBJECT]
    assert all(text(access, flag) == "true" for flag in ("allowCreate", "allowRead", "allowEdit", "allowDelete"))
    editable = {text(field, "field") for field in admin.findall(NS + "fieldPermissions") if text(field, "editable") == "true"}
    assert editable == {f"{GATEWAY_OBJECT}.{name}" for name in object_fields(GATEWAY_OBJECT)}
    assert {text(tab, "tab") for tab in admin.findall(NS + "tabSettings")} == {GATEWAY_OBJECT}


def test_the_platform_event_path_keeps_its_permissions() -> None:
    assert text(granted_objects(permission_set("Presence_Sync_Agent"))[COMMAND_EVENT], "allowRead") == "true"
    assert text(granted_objects(permission_set("Presence_Sync_Integration"))[COMMAND_EVENT], "allowCreate") == "true"
