#!/usr/bin/env python3
"""Writes the conformance resources in profiles/ (FHIR R4 JSON).

    python3 tools/gen_profiles.py [--base URL] [--date YYYY-MM-DD] [OUT_DIR]

The files are committed; this script is their single source, so that url,
id, name, version, date and publisher stay consistent and the canonical base
can be changed in one place (--base). OUT_DIR defaults to profiles/.

Codes and displays of the local CodeSystems are the ones the plugins emit
(plugins/peer_support/peer_support.c, plugins/outcomes/outcomes.c); keep
them in step when a plugin changes. tests/unit/test_profiles.c checks the
result (structure, urls, bases, ValueSet systems, the URLs plugins use).
"""
import argparse
import json
import os

DEFAULT_BASE = "https://crosswalk.example.org/fhir"
VERSION = "0.1.0"
PUBLISHER = "Crosswalk"
R4 = "http://hl7.org/fhir/StructureDefinition/"

LOINC = "http://loinc.org"
NUCC = "http://nucc.org/provider-taxonomy"
UCUM = "http://unitsofmeasure.org"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
PART_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SDOHCC_CS = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
PCO_DOMAINS_CS = "http://hl7.org/fhir/us/pco/CodeSystem/pco-goal-domains-temporary"

# ------------------------------------------------------------ helpers


class Ctx:
    def __init__(self, base, date):
        self.base = base.rstrip("/")
        self.date = date
        self.out = []  # (file name, resource)

    def url(self, kind, rid):
        return "%s/%s/%s" % (self.base, kind, rid)

    def header(self, rtype, rid, name, title, description):
        return {
            "resourceType": rtype,
            "id": rid,
            "url": self.url(rtype, rid),
            "version": VERSION,
            "name": name,
            "title": title,
            "status": "draft",
            "experimental": False,
            "date": self.date,
            "publisher": PUBLISHER,
            "description": description,
        }

    def add(self, res):
        self.out.append(("%s-%s.json" % (res["resourceType"], res["id"]), res))


def pascal(rid):
    return "".join(p[:1].upper() + p[1:] for p in rid.replace("_", "-").split("-") if p)


def el(path, **kw):
    """An ElementDefinition of the differential; id = path unless sliced."""
    e = {"id": kw.pop("id", path), "path": path}
    e.update(kw)
    return e


def ref(*targets):
    return [{"code": "Reference", "targetProfile": list(targets)}]


def cc(system, code, display=None):
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return {"coding": [c]}


# ------------------------------------------------------------ code systems

RECOVERY_DIMENSIONS = [
    ("health", "Health",
     "Overcoming or managing one's illness(es) or symptoms and making informed, healthy choices "
     "that support physical and emotional well-being (for people in recovery from substance use, "
     "this includes abstaining from or reducing non-prescribed substance use)."),
    ("home", "Home",
     "Having a stable and safe place to live."),
    ("purpose", "Purpose",
     "Conducting meaningful daily activities (such as a job, school, volunteering, caring for "
     "family or creative work) and having the independence, income and resources to take part "
     "in society."),
    ("community", "Community",
     "Having relationships and social networks that provide support, friendship, love and hope."),
]

# Exactly as plugins/strengths/strengths.c (st_categories[]: code, display).
STRENGTH_CATEGORIES = [
    ("personal", "Personal quality",
     "A quality, attitude or capacity of the person themself (for example determination, humour, "
     "insight)."),
    ("interpersonal", "Relationships and support",
     "A relationship or the ability to build and keep one: family, friends, peers, mentors."),
    ("community", "Community connection",
     "A connection to a place, group or network outside the person's closest relationships: "
     "neighbourhood, associations, mutual-aid groups."),
    ("cultural-spiritual", "Culture, faith and spirituality",
     "Cultural identity, traditions, faith, spiritual practice or a sense of meaning the person "
     "draws on."),
    ("skills-talents", "Skills and talents",
     "Something the person knows how to do or does well: work skills, creative talents, hobbies, "
     "practical abilities."),
    ("resources", "Resources and assets",
     "Material and practical assets the person can use: income, housing, transport, benefits, "
     "access to services."),
]

# Exactly as plugins/recovery_plan (rp_sections[] and RP_STEP_CODE in
# recovery_plan.c / recovery_plan.h): the kinds of CarePlan.activity.
RECOVERY_PLAN_ACTIVITIES = [
    ("step", "Step toward a goal", "A step the person takes toward one of their goals (activity.detail.goal)."),
    ("wellness-tool", "Wellness tool", "Something the person does to stay well."),
    ("daily-maintenance", "Daily maintenance", "What the person does every day to stay well."),
    ("trigger", "Trigger and what to do", "An event or situation that upsets the person, and their plan for it."),
    ("crisis-warning-sign", "Crisis plan: warning sign", "A sign, in the person's words, that a crisis is coming."),
    ("crisis-what-helps", "Crisis plan: what helps", "What helps the person in a crisis, and what does not."),
    ("crisis-contact", "Crisis plan: who to contact",
     "Someone to contact in a crisis: a person or a service (activity.detail.performer)."),
    ("post-crisis", "Post-crisis plan", "What the person wants to happen after a crisis."),
]

# Exactly as plugins/strengths/strengths.c (st_roles[]): who identified a strength.
STRENGTH_ROLES = [
    ("self", "The person", "The person named the strength themself."),
    ("peer", "A peer supporter", "A peer supporter identified the strength with the person."),
    ("family", "Family or a friend", "Someone close to the person identified the strength."),
    ("provider", "A provider", "A provider identified the strength."),
]

# Exactly as plugins/peer_support/peer_support.c (code, display); the
# definitions are the meanings docs/formats/peer-support.md gives.
PEER_ACTIVITIES = [
    ("goal-planning", "Goal planning", "Setting or reviewing the person's own recovery goals."),
    ("system-navigation", "System navigation", "Finding a way through services, benefits and appointments."),
    ("crisis-support", "Crisis support", "Support during or right after a crisis."),
    ("community-connection", "Community connection", "Linking with community groups, places and people."),
    ("wellness-tools", "Wellness tools", "Working on self-care and wellness tools."),
    ("advocacy", "Advocacy", "Speaking up with or for the person."),
    ("recovery-story", "Sharing recovery experience",
     "Purposeful sharing of the specialist's own lived experience."),
    ("skill-building", "Skill building", "Practising everyday or coping skills."),
    ("group-facilitation", "Group facilitation", "Leading a peer group."),
    ("follow-up", "Follow-up contact", "A short contact to follow up earlier work."),
]

PEER_MODES = [
    ("individual", "Individual peer support", "One peer specialist with one person."),
    ("group", "Group peer support", "A peer specialist with a group of people."),
]

PEER_CERT_AREAS = [
    ("mh", "Mental health", "Certified for peer support in mental health."),
    ("sud", "Substance use", "Certified for peer support in substance use recovery."),
    ("youth", "Youth", "Certified for peer support with youth."),
    ("family", "Family", "Certified for peer support with families."),
]

# Exactly as plugins/outcomes/outcomes.c (instruments[], domains[], raters[]).
RAS_DOMAINS = [
    ("personal-confidence-and-hope", "RAS personal confidence and hope"),
    ("willingness-to-ask-for-help", "RAS willingness to ask for help"),
    ("goal-and-success-orientation", "RAS goal and success orientation"),
    ("reliance-on-others", "RAS reliance on others"),
    ("no-domination-by-symptoms", "RAS no domination by symptoms"),
]


# The person-first phrase table (plugins/person_first, docs/person-first.md),
# reviewed line by line. Code: an ICD-10-CM code or category (the longest
# one that begins the diagnosis code wins). For a code outside Z55-Z65 the
# phrase replaces the display up to and including its first "abuse" or
# "dependence" (what follows is kept), or the whole display when it has
# neither; for Z55-Z65 (circumstances) it replaces the whole display. Never
# "abuse", "abuser", "addict" or "noncompliance"; F1x.1 (ICD "abuse") is a
# mild use disorder and F1x.2 (ICD "dependence") a moderate or severe one, as
# DSM-5 maps them; remission is "in recovery from" (the plugin's rule).
SUBSTANCES = [
    ("F10", "alcohol"),
    ("F11", "opioid"),
    ("F12", "cannabis"),
    ("F13", "sedative, hypnotic or anxiolytic"),
    ("F14", "cocaine"),
    ("F15", "other stimulant"),
    ("F16", "hallucinogen"),
    ("F18", "inhalant"),
    ("F19", "other psychoactive substance"),
]
PERSON_FIRST_OTHER = [
    ("F17", "nicotine use disorder", "Nicotine dependence (category header): a nicotine use disorder."),
    ("F17.2", "nicotine use disorder, moderate or severe",
     "ICD-10-CM nicotine dependence: a moderate or severe nicotine use disorder."),
    ("F55", "harmful use", "ICD-10-CM \"abuse of\" a non-psychoactive substance: harmful use of it."),
    ("Z59", "housing instability", "Housing circumstances, where no narrower row applies."),
    ("Z59.0", "homelessness", "Homelessness (sheltered or unsheltered)."),
    ("Z59.1", "inadequate housing", "Inadequate housing."),
    ("Z59.4", "food insecurity", "Lack of adequate food."),
    ("Z59.5", "extreme poverty", "Extreme poverty."),
    ("Z59.6", "low income", "Low income."),
    ("Z59.7", "insufficient social insurance or welfare support", "Insufficient social insurance and welfare support."),
    ("Z59.81", "housing instability", "Housing instability, housed."),
    ("Z59.82", "transportation insecurity", "Transportation insecurity."),
    ("Z59.86", "financial insecurity", "Financial insecurity."),
    ("Z59.87", "material hardship", "Material hardship."),
    ("Z60.5", "discrimination or persecution", "Target of (perceived) adverse discrimination and persecution."),
    ("Z62.81", "a history of maltreatment in childhood", "Personal history of abuse in childhood: maltreatment the person lived through."),
    ("Z62.810", "a history of physical and sexual maltreatment in childhood", "Maltreatment the person lived through."),
    ("Z62.811", "a history of psychological maltreatment in childhood", "Maltreatment the person lived through."),
    ("Z62.814", "a history of financial exploitation in childhood", "Child financial abuse: exploitation the person lived through."),
    ("Z62.815", "a history of intimate partner violence in childhood", "Intimate partner abuse in childhood: violence the person lived through."),
    ("Z62.819", "a history of maltreatment in childhood", "Unspecified abuse in childhood: maltreatment the person lived through."),
    ("Z63.72", "alcohol or drug use disorder in the family", "Alcoholism and drug addiction in family, in person-first words."),
    ("Z65.1", "incarceration", "Imprisonment and other incarceration."),
    ("Z65.2", "problems after release from prison", "Problems related to release from prison."),
    ("Z65.4", "crime or terrorism as a victim", "Victim of crime and terrorism."),
]


def person_first_concepts():
    rows = []
    for code, name in SUBSTANCES:
        rows.append((code + ".1", name + " use disorder, mild",
                     "ICD-10-CM " + code + ".1 (\"abuse\"): a mild " + name + " use disorder (DSM-5)."))
        rows.append((code + ".2", name + " use disorder, moderate or severe",
                     "ICD-10-CM " + code + ".2 (\"dependence\"): a moderate or severe " + name +
                     " use disorder (DSM-5)."))
    rows += PERSON_FIRST_OTHER
    rows.sort(key=lambda r: r[0].encode())
    return simple_concepts(rows)


QOL_INSTRUMENTS = [
    ("qol-mansa", "Manchester Short Assessment of Quality of Life (MANSA) score",
     "Manchester Short Assessment of Quality of Life (MANSA)"),
    ("qol-whoqol-bref", "WHOQOL-BREF quality of life score", "WHOQOL-BREF"),
    ("qol-q-les-q-sf", "Quality of Life Enjoyment and Satisfaction Questionnaire, short form, score",
     "Quality of Life Enjoyment and Satisfaction Questionnaire, short form (Q-LES-Q-SF)"),
    ("qol-qoli", "Lehman Quality of Life Interview score", "Lehman Quality of Life Interview (QOLI)"),
]


def questionnaires(x):
    """The Questionnaires the outcomes plugin names in
    QuestionnaireResponse.questionnaire ({base}/Questionnaire/{instrument}):
    the linkIds and answer types it writes. Item texts name the item only:
    the instruments' wording is their authors' and is not copied here."""
    def q_item(link, text, typ, **kw):
        it = {"linkId": link, "text": text, "type": typ}
        it.update(kw)
        return it

    def scored(n, lo, hi, total_note):
        items = [q_item(str(i), "Item %d (%d..%d)" % (i, lo, hi), "integer", required=False)
                 for i in range(1, n + 1)]
        items.append(q_item("total", "Total score" + total_note, "integer", required=False))
        return items

    ras_items = [q_item(str(i), "Item %d (1..5; items 25..41 in the 41-item version only)" % i, "integer",
                        required=False) for i in range(1, 42)]
    ras_items.append(q_item("total", "Total score (24..120, or 41..205 for the 41-item version)", "integer",
                            required=False))
    ras_items += [q_item("domain/" + k, d + " (mean of its items, 1..5)", "decimal", required=False)
                  for k, d in RAS_DOMAINS]
    ras_items.append(q_item("form", "Version: ras-24 or ras-41 (for a total given alone)", "string",
                            required=False))
    defs = [
        ("phq-9", "PHQ-9", "Patient Health Questionnaire, 9 items, each 0..3; the total 0..27.",
         scored(9, 0, 3, " (0..27)")),
        ("gad-7", "GAD-7", "Generalized Anxiety Disorder scale, 7 items, each 0..3; the total 0..21.",
         scored(7, 0, 3, " (0..21)")),
        ("ras", "Recovery Assessment Scale", "The Recovery Assessment Scale, 24-item (RAS-24) or original "
         "41-item version, each item 1..5, with optional domain scores.", ras_items),
        ("goal-attainment", "Goal attainment scaling",
         "Goal attainment scaling: who rated, then per goal the Goal and its level -2..+2.",
         [q_item("rater", "Who rated (person, practitioner, caregiver)", "choice",
                 answerValueSet=x.url("ValueSet", "outcomes")),
          q_item("goal/N", "One goal (N = 1, 2, ...: one group per goal scored)", "group", repeats=True, item=[
              q_item("goal/N/goal", "The Goal", "reference"),
              q_item("goal/N/score", "Attainment level -2..+2", "integer")])]),
        ("qol", "Quality of life", "A quality-of-life score and the instrument it came from.",
         [q_item("score", "Score", "decimal"), q_item("scale", "Instrument", "string", required=False)]),
        ("barc-10", "Brief Assessment of Recovery Capital (BARC-10)",
         "Brief Assessment of Recovery Capital, 10 items, each 1..6; the total 10..60.",
         scored(10, 1, 6, " (10..60)")),
    ]
    for rid, title, desc, items in defs:
        q = x.header("Questionnaire", rid, pascal(rid), title,
                     desc + " Published so that the canonical the outcomes plugin writes in "
                     "QuestionnaireResponse.questionnaire resolves; the item texts name the items only.")
        q["subjectType"] = ["Patient"]
        q["item"] = items
        x.add(q)


def outcomes_concepts():
    c = [{"code": "ras-total", "display": "Recovery Assessment Scale total score",
          "definition": "Sum of the item scores of the Recovery Assessment Scale when the version is not known "
                        "(a total given without its items or its form)."},
         {"code": "ras-24-total", "display": "Recovery Assessment Scale, 24-item version (RAS-24) total score",
          "definition": "Sum of the 24 item scores of the RAS-24 (24..120). Not comparable with a 41-item total."},
         {"code": "ras-41-total", "display": "Recovery Assessment Scale, 41-item version total score",
          "definition": "Sum of the 41 item scores of the original RAS (41..205). Not comparable with a "
                        "24-item total."}]
    for key, disp in RAS_DOMAINS:
        c.append({"code": "ras-" + key, "display": disp,
                  "definition": "Mean of the items of this Recovery Assessment Scale domain (factor of the "
                                "24-item version; the item-to-domain key is not verified here)."})
    c.append({"code": "event", "display": "Stability event",
              "definition": "What the outcomes format's events record, each an Encounter of its own (class EMER "
                            "or IMP), so that stability and recovery series can be reported side by side.",
              "concept": [
                  {"code": "crisis-contact", "display": "Crisis contact",
                   "definition": "A contact with a crisis service (crisis line, mobile crisis team); class EMER."},
                  {"code": "emergency-visit", "display": "Emergency visit",
                   "definition": "A visit to an emergency department; class EMER."},
                  {"code": "admission", "display": "Admission",
                   "definition": "An inpatient admission; class IMP."}]})
    c.append({"code": "barc-10-total", "display": "Brief Assessment of Recovery Capital (BARC-10) total score",
              "definition": "Sum of the ten item scores (each 1..6) of the BARC-10: 10..60."})
    c.append({"code": "qol-score", "display": "Quality of life score",
              "definition": "The score of a quality-of-life instrument without a code of its own here; the "
                            "instrument is named in Observation.code.text."})
    for code, disp, what in QOL_INSTRUMENTS:
        c.append({"code": code, "display": disp,
                  "definition": "The score of the " + what + " (one code per instrument: scores of different "
                                "quality-of-life instruments are not comparable)."})
    c.append({"code": "rater", "display": "Goal attainment rater",
              "definition": "Who rated the attainment of goals in a goal attainment scaling administration.",
              "concept": [
                  {"code": "person", "display": "Person",
                   "definition": "The person rated the attainment of their own goals."},
                  {"code": "practitioner", "display": "Practitioner",
                   "definition": "A practitioner rated the goals."},
                  {"code": "caregiver", "display": "Caregiver",
                   "definition": "A caregiver rated the goals."}]})
    return c


def codesystem(x, rid, title, description, concepts, hierarchical=False, vs_id=None):
    cs = x.header("CodeSystem", rid, pascal(rid), title, description)
    cs.update({
        "caseSensitive": True,
        "valueSet": x.url("ValueSet", vs_id or rid),
        "content": "complete",
    })
    if hierarchical:
        cs["hierarchyMeaning"] = "grouped-by"
    cs["count"] = count_concepts(concepts)
    cs["concept"] = concepts
    x.add(cs)
    return cs


def count_concepts(cs):
    return sum(1 + count_concepts(c.get("concept", [])) for c in cs)


def simple_concepts(rows):
    return [{"code": c, "display": d, "definition": df} for c, d, df in rows]


def valueset(x, rid, title, description, includes):
    vs = x.header("ValueSet", rid, pascal(rid), title, description)
    vs["immutable"] = False
    vs["compose"] = {"include": includes}
    x.add(vs)
    return vs


def all_of(system):
    return {"system": system}


def some_of(system, codes):
    return {"system": system, "concept": [{"code": c, "display": d} for c, d in codes]}


# ------------------------------------------------------------ profiles


R4_PACKAGE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "fhir-r4", "package")


def in_r4_order(rtype, elements):
    """Sorts differential elements into the base type's element order (as
    FHIR requires); slices keep their place after their slicing element."""
    path = os.path.join(R4_PACKAGE, "StructureDefinition-%s.json" % rtype)
    if not os.path.exists(path):
        return elements
    with open(path, encoding="utf-8") as f:
        order = {e["path"]: i for i, e in enumerate(json.load(f)["snapshot"]["element"])}

    def key(e):
        # Children of a data type (description.text) are not in the
        # snapshot: they sort with their element, in the order written.
        p = e["path"]
        while p not in order and "." in p:
            p = p.rsplit(".", 1)[0]
        if p == rtype:
            raise SystemExit("%s: %s is not an element of R4 %s" % (rtype, e["path"], rtype))
        return order[p]
    return sorted(elements, key=key)


def profile(x, rid, title, description, rtype, elements, base=None, purpose=None):
    sd = x.header("StructureDefinition", rid, pascal(rid), title, description)
    if purpose:
        sd["purpose"] = purpose
    sd.update({
        "fhirVersion": "4.0.1",
        "kind": "resource",
        "abstract": False,
        "type": rtype,
        "baseDefinition": base or R4 + rtype,
        "derivation": "constraint",
        "differential": {"element": [el(rtype, short=title, definition=description)]
                         + in_r4_order(rtype, elements)},
    })
    x.add(sd)
    return sd


# The simple extensions (extension()), in the order they are written: id,
# title, description, contexts, value type, short, and options: "binding"
# (the id of one of this project's ValueSets, bound required) and "targets"
# (the R4 resource types a Reference may name) and "max" (how many times it
# may appear on its context, "1" unless given).
SIMPLE_EXTENSIONS = [
    ("peer-support-note", "Peer-support note",
     "A free-text note on a peer-support encounter, as the peer specialist wrote it. R4 Encounter has no "
     "note element; the peer_support plugin writes the format's 'notes' field here.",
     ["Encounter"], "string", "Free-text note on the encounter", {}),
    ("peer-support-prior-authorization", "Prior authorization of a peer-support encounter",
     "The payer's prior authorization number the encounter is billed under (version 2 of the peer-support "
     "format). The billing plugin writes it as Claim.insurance.preAuthRef.",
     ["Encounter"], "string", "Prior authorization number", {}),
    ("peer-support-coverage", "Coverage of a peer-support encounter",
     "The Coverage (payer and member id) the encounter is billed to (version 2 of the peer-support format). "
     "R4 Encounter has no reference to a Coverage.",
     ["Encounter"], "Reference", "The Coverage the encounter is billed to", {}),
    ("peer-support-plan-of-care", "Plan of care of a peer-support encounter",
     "The person's recovery plan (a CarePlan) the encounter carries out (version 2 of the peer-support "
     "format). R4 Encounter.basedOn admits only ServiceRequest, and the core extension event-basedOn has "
     "Condition as its only context.",
     ["Encounter"], "Reference", "The recovery plan the encounter carries out", {}),
    ("withheld", "Withheld for lack of consent",
     "Marks the stub the gateway puts in place of a resource it withholds from the recipient of an export "
     "(42 CFR Part 2 data no Consent permits to go to it): the stub keeps only what says the resource "
     "exists; the code says why (no-part2-consent).",
     ["Resource"], "code", "Why the resource was withheld", {}),
    ("redisclosure-notice", "Redisclosure notice",
     "The notice of 42 CFR 2.32 (as amended in 2024) that accompanies every disclosure of 42 CFR Part 2 "
     "data, on the Bundle that discloses it.",
     ["Meta"], "string", "The 42 CFR 2.32 notice", {}),
    ("disclosure-consent", "Consent of a disclosure",
     "A Consent that permitted a disclosure made with the patient's consent, with a clear explanation of its "
     "scope (recipient, purpose, period, kinds of records) as the reference's display: 42 CFR 2.32(b) as "
     "amended in 2024 asks that each such disclosure be accompanied by a copy of the consent or such an "
     "explanation. One per permitting Consent, on the Bundle that discloses.",
     ["Meta"], "Reference", "A permitting Consent and its scope", {"targets": ["Consent"], "max": "*"}),
    ("recovery-pronouns", "Pronouns",
     "The pronouns the person uses, in their own words (for example 'she/her'). The recovery_plan plugin "
     "writes the format's person.pronouns here: no R4 implementation guide it follows defines a pronouns "
     "extension (R5's individual-pronouns is not R4).",
     ["Patient"], "string", "The person's pronouns, as they give them", {}),
    ("recovery-identity", "Identity and culture",
     "What the person wants known about their identity, culture or community, in their own words. The "
     "recovery_plan plugin writes the format's person.identity here.",
     ["Patient"], "string", "The person's identity, in their own words", {}),
    ("recovery-goal-set-with", "Goal set with",
     "Who the person set the goal with, as a role in their own words (for example 'my peer specialist'); the "
     "format names no one. Written by the recovery_plan plugin.",
     ["Goal"], "string", "Who the goal was set with (a role)", {}),
    ("recovery-support-for", "Support for goal",
     "The goal a support of the recovery plan (a person, peer or service in CarePlan.supportingInfo) helps "
     "with. Written by the recovery_plan plugin.",
     ["CarePlan.supportingInfo"], "Reference", "The Goal this support helps with", {"targets": ["Goal"]}),
    ("strength-identified-by", "Strength identified by",
     "Who identified a strength: the person themself, a peer supporter, family or a friend, or a provider. "
     "Written by the strengths plugin on every strength (Observation or Condition).",
     ["Observation", "Condition"], "code", "Who identified the strength", {"binding": "strength-identified-by"}),
]


def extension(x, rid, title, description, contexts, value_type, short, binding=None, targets=None, max="1"):
    """A simple extension: one value of value_type (bound to a ValueSet
    when binding is given; Reference targets when targets is given), at
    most max times on its context."""
    sd = x.header("StructureDefinition", rid, pascal(rid), title, description)
    url = x.url("StructureDefinition", rid)
    value = el("Extension.value[x]", min=1, type=[{"code": value_type}])
    if targets:
        value["type"][0]["targetProfile"] = list(targets)
    if binding:
        value["binding"] = {"strength": "required", "valueSet": binding}
    sd.update({
        "fhirVersion": "4.0.1",
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": c} for c in contexts],
        "type": "Extension",
        "baseDefinition": R4 + "Extension",
        "derivation": "constraint",
        "differential": {"element": [
            el("Extension", short=short, definition=description, min=0, max=max),
            el("Extension.extension", max="0"),
            el("Extension.url", fixedUri=url),
            value,
        ]},
    })
    x.add(sd)
    return sd


def diagnosis_language(x):
    """The person's preference for how their diagnoses are named: a complex
    extension (style; words, each a code and the person's text)."""
    rid = "diagnosis-language"
    desc = ("How the person wants their diagnoses named when they leave the gateway: a style "
            "(person-first or identity-first) and, per diagnosis code, their own words. The recovery-plan "
            "plugin writes it from person.diagnosis_language; the person_first plugin honours it on every "
            "export for that person (docs/person-first.md).")
    sd = x.header("StructureDefinition", rid, pascal(rid), "Diagnosis language", desc)
    url = x.url("StructureDefinition", rid)
    E = "Extension.extension"
    sd.update({
        "fhirVersion": "4.0.1",
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": "Patient"}],
        "type": "Extension",
        "baseDefinition": R4 + "Extension",
        "derivation": "constraint",
        "differential": {"element": [
            el("Extension", short="How the person wants their diagnoses named", definition=desc, min=0, max="1"),
            el(E, min=0, max="*",
               short="style (valueCode person-first | identity-first, at most once); words (once per code: "
                     "a sub-extension code with valueCode, the diagnosis code, and text with valueString, "
                     "the person's words)"),
            el("Extension.url", fixedUri=url),
            el("Extension.value[x]", max="0"),
        ]},
    })
    x.add(sd)
    return sd


def pattern_slicing(path, description):
    return el(path, slicing={"discriminator": [{"type": "pattern", "path": "$this"}],
                             "description": description, "rules": "open"})


def slice_(path, name, **kw):
    return el(path, id="%s:%s" % (path, name), sliceName=name, **kw)


def build(x):
    b = x.base
    sd = lambda rid: x.url("StructureDefinition", rid)  # noqa: E731
    vs = lambda rid: x.url("ValueSet", rid)  # noqa: E731
    cs = lambda rid: x.url("CodeSystem", rid)  # noqa: E731

    # --- terminology: recovery dimensions, strengths, local plugin codes
    codesystem(x, "recovery-dimension", "Recovery dimensions",
               "The four dimensions that support a life in recovery in SAMHSA's working definition of "
               "recovery (2012): health, home, purpose and community. No HL7, LOINC or SNOMED CT code "
               "system for them was found, so Crosswalk defines this local one; use it alongside the "
               "SDOH Clinical Care and Person-Centered Outcomes codes of the ConceptMaps here. The "
               "definitions are short paraphrases of SAMHSA's; check them against the publication "
               "before showing them to people.",
               simple_concepts(RECOVERY_DIMENSIONS))
    valueset(x, "recovery-dimension", "Recovery dimensions",
             "All four recovery dimensions (health, home, purpose, community). Bound to Goal.category "
             "in the recovery-goal profile.",
             [all_of(cs("recovery-dimension"))])

    codesystem(x, "strength-category", "Strength categories",
               "Kinds of strengths (assets, protective factors) a person names in a person-centred "
               "recovery plan. Local to Crosswalk: no standard code system for kinds of strengths was "
               "found. The list is the project's own; the strengths plugin writes these codes with these "
               "displays.",
               simple_concepts(STRENGTH_CATEGORIES))
    valueset(x, "strength-category", "Strength categories",
             "All strength categories. Bound to the strength-category slice of Observation.category "
             "in the recovery-strength profile.",
             [all_of(cs("strength-category"))])

    codesystem(x, "recovery-observation", "Recovery observation codes",
               "Observation codes Crosswalk needs where no LOINC or SNOMED CT code was found. "
               "'strength' follows the eLTSS pattern (an Observation whose value is the person's own "
               "words); eLTSS uses a temporary code 'strength' in its own code system for the same "
               "purpose.",
               [{"code": "strength", "display": "Strength",
                 "definition": "A favourable attribute of the person, of their support network, of their "
                               "environment or of other parts of their life, in the person's own words."}])
    valueset(x, "recovery-observation", "Recovery observation codes",
             "All codes of the recovery-observation code system.",
             [all_of(cs("recovery-observation"))])

    codesystem(x, "recovery-plan-activity", "Recovery plan activities",
               "The kinds of activity a recovery plan holds, as the recovery_plan plugin writes them in "
               "CarePlan.activity.detail.code (docs/formats/recovery-plan.md): steps toward the person's "
               "goals, wellness tools, and the sections of a wellness and crisis plan. The section names "
               "are generic; no published plan's wording is copied.",
               simple_concepts(RECOVERY_PLAN_ACTIVITIES))
    valueset(x, "recovery-plan-activity", "Recovery plan activities",
             "All recovery plan activity codes. Bound (extensible) to CarePlan.activity.detail.code in the "
             "recovery-plan profile.",
             [all_of(cs("recovery-plan-activity"))])

    codesystem(x, "strength-identified-by", "Who identified a strength",
               "Who named or identified a strength of the person, as the strengths plugin writes it in "
               "the strength-identified-by extension (docs/formats/strengths.md).",
               simple_concepts(STRENGTH_ROLES))
    valueset(x, "strength-identified-by", "Who identified a strength",
             "All codes of the strength-identified-by code system. Bound (required) to the value of the "
             "strength-identified-by extension.",
             [all_of(cs("strength-identified-by"))])

    codesystem(x, "peer-support-activity", "Peer-support activities",
               "What a certified peer specialist did in an encounter, as the peer-support format "
               "records it (docs/formats/peer-support.md). The peer_support plugin writes one "
               "Procedure per activity with Procedure.code from this system.",
               simple_concepts(PEER_ACTIVITIES))
    valueset(x, "peer-support-activity", "Peer-support activities",
             "All peer-support activity codes. Bound (required) to Procedure.code in the "
             "peer-support-procedure profile.",
             [all_of(cs("peer-support-activity"))])

    codesystem(x, "peer-support-mode", "Peer-support session modes",
               "Whether a peer-support encounter was individual or in a group. The peer_support plugin "
               "writes it as Encounter.type.",
               simple_concepts(PEER_MODES))
    valueset(x, "peer-support-mode", "Peer-support session modes",
             "Both session modes. Bound (required) to the mode slice of Encounter.type in the "
             "peer-support-encounter profile.",
             [all_of(cs("peer-support-mode"))])

    codesystem(x, "peer-support-certification-area", "Peer specialist certification areas",
               "The area a peer specialist's certification covers. The peer_support plugin writes it as "
               "Practitioner.qualification.code (version 2 of the format).",
               simple_concepts(PEER_CERT_AREAS))
    valueset(x, "peer-support-certification-area", "Peer specialist certification areas",
             "All certification areas.",
             [all_of(cs("peer-support-certification-area"))])

    codesystem(x, "person-first-phrases", "Person-first phrases for diagnoses",
               "The table the person_first plugin writes diagnoses with in exports to recovery tools "
               "(docs/person-first.md). Each code is an ICD-10-CM code or category; its display is the "
               "phrase that replaces the code's ICD-10-CM display (up to its first 'abuse' or "
               "'dependence' outside Z55-Z65, whole for the circumstances Z55-Z65), following "
               "published language guidance: person-first, never 'abuse', 'abuser', 'addict' or "
               "'noncompliance'; F1x.1 as a mild and F1x.2 as a moderate or severe use disorder. Symptom "
               "codes (R) and Z-codes outside Z55-Z65 have no phrase.",
               person_first_concepts())
    valueset(x, "person-first-phrases", "Person-first phrases for diagnoses",
             "Every row of the person-first phrase table.",
             [all_of(cs("person-first-phrases"))])

    codesystem(x, "outcomes", "Outcome measure local codes",
               "Codes the outcomes plugin needs where no LOINC code was found: the Recovery Assessment "
               "Scale total and domain scores, a generic quality-of-life score, and who rated a goal "
               "attainment scaling administration. Codes and displays are the ones the plugin writes "
               "(plugins/outcomes/outcomes.c). The plugin writes the rater codes without a display; "
               "the gateway fills it in from this CodeSystem.",
               outcomes_concepts(), hierarchical=True)
    valueset(x, "outcomes", "Outcome measure local codes",
             "All codes of the outcomes code system.",
             [all_of(cs("outcomes"))])

    # Observation codes per outcome instrument (bound in the outcomes-* profiles).
    valueset(x, "outcomes-phq-9-codes", "PHQ-9 observation codes",
             "The PHQ-9 panel and total score codes the outcomes plugin writes, and item 9 (44260-8, "
             "thoughts of self-harm), written as an Observation of its own when its answer is above 0.",
             [{"system": LOINC, "concept": [
                 {"code": "44249-1", "display": "PHQ-9 quick depression assessment panel [Reported.PHQ]"},
                 {"code": "44261-6", "display": "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"},
                 {"code": "44260-8"}]}])
    valueset(x, "outcomes-gad-7-codes", "GAD-7 observation codes",
             "The GAD-7 panel and total score codes the outcomes plugin writes.",
             [some_of(LOINC, [("69737-5", "Generalized anxiety disorder 7 item (GAD-7) panel"),
                              ("70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]")])])
    valueset(x, "outcomes-goal-attainment-codes", "Goal attainment scaling observation codes",
             "The follow-up goal attainment scaling score codes, one per rater (person, practitioner, "
             "caregiver).",
             [some_of(LOINC, [("107334-5", "Patient follow-up goal attainment scaling score"),
                              ("107333-7", "Practitioner follow-up goal attainment scaling score"),
                              ("107331-1", "Caregiver follow-up goal attainment scaling score")])])
    valueset(x, "outcomes-goal-attainment-levels", "Goal attainment levels",
             "The five goal attainment levels (+2 to -2) of LOINC answer list LL6900-6.",
             [some_of(LOINC, [("LA34479-8", "Much better than expected"),
                              ("LA34480-6", "Better than expected"),
                              ("LA34481-4", "Expected outcome"),
                              ("LA34483-0", "Less than expected"),
                              ("LA34484-8", "Much less than expected")])])
    valueset(x, "outcomes-qol-codes", "Quality of life score codes",
             "One code per quality-of-life instrument, and qol-score for an instrument without a code of "
             "its own.",
             [some_of(cs("outcomes"), [("qol-score", "Quality of life score")] +
                      [(c, d) for c, d, _ in QOL_INSTRUMENTS])])
    valueset(x, "outcomes-ras-codes", "Recovery Assessment Scale total codes",
             "The RAS total codes, one per version: ras-24-total, ras-41-total, and ras-total when the "
             "version is not known.",
             [some_of(cs("outcomes"), [("ras-total", "Recovery Assessment Scale total score"),
                                       ("ras-24-total", "Recovery Assessment Scale, 24-item version (RAS-24) "
                                                        "total score"),
                                       ("ras-41-total", "Recovery Assessment Scale, 41-item version total "
                                                        "score")])])
    valueset(x, "outcomes-ras-domains", "Recovery Assessment Scale domains",
             "The five RAS domain score codes used as Observation.component.code.",
             [some_of(cs("outcomes"), [("ras-" + k, d) for k, d in RAS_DOMAINS])])

    # --- ConceptMaps: recovery dimensions to SDOHCC and PCO domains
    conceptmaps(x)

    # --- extension
    diagnosis_language(x)
    for rid, title, description, contexts, value_type, short, opts in SIMPLE_EXTENSIONS:
        extension(x, rid, title, description, contexts, value_type, short,
                  binding=vs(opts["binding"]) if "binding" in opts else None,
                  targets=[R4 + t for t in opts.get("targets", [])] or None,
                  max=opts.get("max", "1"))

    # --- the people the recovery plugins write
    profile(x, "recovery-patient", "Recovery plan person",
            "The person a recovery plan belongs to, as the recovery_plan plugin writes them: identified by "
            "the sending program's id, named as they go by, with their pronouns, identity and how they want "
            "their diagnoses named when they give them.", "Patient", [
                el("Patient.extension", slicing={"discriminator": [{"type": "value", "path": "url"}],
                                                 "rules": "open"}),
                slice_("Patient.extension", "pronouns", min=0, max="1",
                       type=[{"code": "Extension", "profile": [sd("recovery-pronouns")]}]),
                slice_("Patient.extension", "identity", min=0, max="1",
                       type=[{"code": "Extension", "profile": [sd("recovery-identity")]}]),
                slice_("Patient.extension", "diagnosisLanguage", min=0, max="1",
                       type=[{"code": "Extension", "profile": [sd("diagnosis-language")]}]),
                el("Patient.identifier", min=1, mustSupport=True),
                el("Patient.name", mustSupport=True),
                el("Patient.name.text", mustSupport=True),
                el("Patient.communication", mustSupport=True,
                   comment="The person's languages; preferred = the language they want to be spoken to in."),
            ])
    profile(x, "recovery-strength-patient", "Person with strengths",
            "The person whose strengths the strengths plugin writes: identified by the sending program's "
            "id, named as they go by.", "Patient", [
                el("Patient.identifier", min=1, mustSupport=True),
                el("Patient.name", mustSupport=True),
                el("Patient.name.text", mustSupport=True),
            ])

    # --- recovery goal
    # --- recovery goal
    profile(x, "recovery-goal", "Recovery goal",
            "A goal the person sets for their own recovery, in their own words, filed under one or more "
            "recovery dimensions.", "Goal", [
                el("Goal.lifecycleStatus", mustSupport=True),
                pattern_slicing("Goal.category", "One category from the recovery dimensions; other "
                                "categories (SDOH Clinical Care, Person-Centered Outcomes) may follow."),
                slice_("Goal.category", "recoveryDimension", min=1, max="*",
                       short="Recovery dimension(s) the goal serves",
                       patternCodeableConcept={"coding": [{"system": cs("recovery-dimension")}]},
                       binding={"strength": "required", "valueSet": vs("recovery-dimension")}),
                el("Goal.description", mustSupport=True,
                   comment="Person-driven goals are often only free text; description.text holds the "
                           "person's own wording."),
                el("Goal.description.text", min=1, mustSupport=True,
                   short="The goal in the person's own words"),
                el("Goal.subject", type=ref(R4 + "Patient"), mustSupport=True),
                el("Goal.expressedBy", min=1, mustSupport=True,
                   comment="The Patient for a person-driven goal."),
            ])

    # --- recovery strength (eLTSS pattern)
    profile(x, "recovery-strength", "Recovery strength",
            "A strength of the person, kept in the person's own words (the eLTSS Observation pattern): "
            "code 'strength', category social-history plus a strength category, valueString the "
            "person's words. Referenced from CarePlan.supportingInfo.", "Observation", [
                el("Observation.status", mustSupport=True),
                pattern_slicing("Observation.category", "social-history and a strength category."),
                slice_("Observation.category", "socialHistory", min=1, max="1",
                       patternCodeableConcept=cc(OBS_CAT, "social-history")),
                slice_("Observation.category", "strengthCategory", min=0, max="1",
                       patternCodeableConcept={"coding": [{"system": cs("strength-category")}]},
                       binding={"strength": "required", "valueSet": vs("strength-category")}),
                el("Observation.code", patternCodeableConcept=cc(cs("recovery-observation"), "strength")),
                el("Observation.subject", min=1, type=ref(R4 + "Patient"), mustSupport=True),
                el("Observation.value[x]", min=1, type=[{"code": "string"}],
                   short="The strength in the person's own words", mustSupport=True),
            ])

    profile(x, "recovery-strength-condition", "Recovery strength (protective factor)",
            "A strength of the person as a Condition in the SDOH Clinical Care protective-factor pattern "
            "(the strengths plugin's 'condition' mode): category protective-factor plus a strength "
            "category, code.text the person's words, no code.", "Condition", [
                el("Condition.clinicalStatus", mustSupport=True),
                pattern_slicing("Condition.category", "protective-factor, health-concern and a strength "
                                "category."),
                slice_("Condition.category", "protectiveFactor", min=1, max="1",
                       patternCodeableConcept=cc(SDOHCC_CS, "protective-factor")),
                slice_("Condition.category", "strengthCategory", min=0, max="1",
                       patternCodeableConcept={"coding": [{"system": cs("strength-category")}]},
                       binding={"strength": "required", "valueSet": vs("strength-category")}),
                el("Condition.code", min=1, mustSupport=True),
                el("Condition.code.text", min=1, short="The strength in the person's own words"),
                el("Condition.subject", type=ref(R4 + "Patient"), mustSupport=True),
            ])

    # --- recovery outcome observation (generic) and the outcomes profiles
    profile(x, "recovery-outcome-observation", "Recovery outcome observation",
            "A score or panel of an outcome measure, derived from the QuestionnaireResponse of the "
            "administration it comes from.", "Observation", [
                el("Observation.status", mustSupport=True),
                pattern_slicing("Observation.category", "survey, plus any other category."),
                slice_("Observation.category", "survey", min=1, max="1",
                       patternCodeableConcept=cc(OBS_CAT, "survey")),
                el("Observation.subject", min=1, type=ref(R4 + "Patient"), mustSupport=True),
                el("Observation.effective[x]", min=1, type=[{"code": "dateTime"}, {"code": "Period"}],
                   mustSupport=True),
                el("Observation.derivedFrom", min=1, type=ref(R4 + "QuestionnaireResponse"),
                   short="The QuestionnaireResponse of the administration", mustSupport=True),
            ])
    outcome_base = sd("recovery-outcome-observation")
    profile(x, "outcomes-questionnaireresponse", "Outcome measure administration",
            "One completed administration of an outcome measure as the outcomes plugin writes it: it "
            "carries every field of the native administration, so it alone gives the administration "
            "back.", "QuestionnaireResponse", [
                el("QuestionnaireResponse.identifier", min=1, mustSupport=True),
                el("QuestionnaireResponse.questionnaire", min=1,
                   comment="%s/Questionnaire/{instrument}, one of the Questionnaires published here." % b),
                el("QuestionnaireResponse.subject", min=1, type=ref(R4 + "Patient")),
                el("QuestionnaireResponse.authored", min=1),
                el("QuestionnaireResponse.item", min=1),
            ])
    qr_profile = sd("outcomes-questionnaireresponse")

    def outcome_profile(rid, title, desc, code, extra):
        code_el = (el("Observation.code", patternCodeableConcept=code) if isinstance(code, dict)
                   else el("Observation.code", binding={"strength": "required", "valueSet": code}))
        profile(x, rid, title, desc, "Observation", [
            code_el,
            el("Observation.derivedFrom", type=ref(qr_profile)),
        ] + extra, base=outcome_base)

    outcome_profile("outcomes-barc-10", "BARC-10 observation",
                    "The Brief Assessment of Recovery Capital (BARC-10) total score (valueInteger 10..60).",
                    cc(cs("outcomes"), "barc-10-total"),
                    [el("Observation.value[x]", min=1, type=[{"code": "integer"}])])
    questionnaires(x)
    outcome_profile("outcomes-phq-9", "PHQ-9 observation",
                    "The PHQ-9 panel (no value, hasMember the total) or its total score (valueInteger "
                    "0..27).", vs("outcomes-phq-9-codes"),
                    [el("Observation.value[x]", type=[{"code": "integer"}])])
    outcome_profile("outcomes-gad-7", "GAD-7 observation",
                    "The GAD-7 panel (no value, hasMember the total) or its total score (valueInteger "
                    "0..21).", vs("outcomes-gad-7-codes"),
                    [el("Observation.value[x]", type=[{"code": "integer"}])])
    outcome_profile("outcomes-goal-attainment", "Goal attainment observation",
                    "The attainment of one goal, rated by the person, a practitioner or a caregiver, as a "
                    "LOINC answer from LL6900-6.", vs("outcomes-goal-attainment-codes"),
                    [el("Observation.focus", min=1, max="1", type=ref(R4 + "Goal")),
                     el("Observation.value[x]", min=1, type=[{"code": "CodeableConcept"}],
                        binding={"strength": "required", "valueSet": vs("outcomes-goal-attainment-levels")})])
    outcome_profile("outcomes-ras", "Recovery Assessment Scale observation",
                    "The RAS total score (valueInteger) with optional domain scores as components; the "
                    "code says the version (RAS-24, the 41-item RAS, or unknown).",
                    vs("outcomes-ras-codes"),
                    [el("Observation.value[x]", min=1, type=[{"code": "integer"}]),
                     el("Observation.component.code",
                        binding={"strength": "required", "valueSet": vs("outcomes-ras-domains")}),
                     el("Observation.component.value[x]", type=[{"code": "Quantity"}])])
    outcome_profile("outcomes-qol", "Quality of life observation",
                    "A quality-of-life score (valueQuantity): one code per instrument, qol-score for one "
                    "without a code of its own; the instrument's name is in code.text.",
                    vs("outcomes-qol-codes"),
                    [el("Observation.value[x]", min=1, type=[{"code": "Quantity"}])])

    # --- peer support
    profile(x, "peer-support-patient", "Peer-support person",
            "The person a peer specialist met, as the peer_support plugin writes it: identified by the "
            "sending program's id, named as they go by.", "Patient", [
                el("Patient.identifier", min=1, mustSupport=True),
                el("Patient.name", mustSupport=True),
                el("Patient.name.text", mustSupport=True),
            ])
    profile(x, "peer-support-practitioner", "Peer specialist",
            "A certified peer specialist: staff identifier, optional NPI, name, peer certification as "
            "text.", "Practitioner", [
                el("Practitioner.identifier", min=1, mustSupport=True),
                el("Practitioner.name", min=1, mustSupport=True),
                el("Practitioner.name.text", min=1),
                el("Practitioner.qualification.code.text", short="Peer certification, e.g. CPS"),
            ])
    profile(x, "peer-support-practitionerrole", "Peer specialist role",
            "The role of a peer specialist: NUCC provider taxonomy 175T00000X Peer Specialist.",
            "PractitionerRole", [
                el("PractitionerRole.practitioner", min=1, type=ref(sd("peer-support-practitioner"))),
                pattern_slicing("PractitionerRole.code", "The peer specialist taxonomy code, plus others."),
                slice_("PractitionerRole.code", "peerSpecialist", min=1, max="1",
                       patternCodeableConcept=cc(NUCC, "175T00000X")),
            ])
    profile(x, "peer-support-encounter", "Peer-support encounter",
            "One encounter between a certified peer specialist and a person: who took part, when, for "
            "how long (in minutes), individual or group, and H0038 when it is billed as peer support.",
            "Encounter", [
                el("Encounter.extension", slicing={"discriminator": [{"type": "value", "path": "url"}],
                                                   "rules": "open"}),
                slice_("Encounter.extension", "note", min=0, max="1",
                       type=[{"code": "Extension", "profile": [sd("peer-support-note")]}]),
                slice_("Encounter.extension", "goal", min=0, max="*",
                       short="A recovery goal the encounter served",
                       comment="The R4 core extension resource-pertainsToGoal, valueReference to the Goal "
                               "(with its identifier in the goal naming system): R4 allows no Goal in "
                               "Encounter.reasonReference.",
                       type=[{"code": "Extension",
                              "profile": ["http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal"]}]),
                el("Encounter.identifier", min=1, mustSupport=True),
                el("Encounter.status", mustSupport=True),
                el("Encounter.class", comment="AMB (clinic), FLD (community), HH (home) or VR (telehealth)."),
                dict(pattern_slicing("Encounter.type", "The session mode and, when billable, H0038."), min=1),
                slice_("Encounter.type", "mode", min=1, max="1",
                       patternCodeableConcept={"coding": [{"system": cs("peer-support-mode")}]},
                       binding={"strength": "required", "valueSet": vs("peer-support-mode")}),
                slice_("Encounter.type", "billing", min=0, max="1",
                       short="HCPCS H0038 Self-help/peer services, per 15 minutes, when billable",
                       comment="Present only when the encounter is billed as peer support. The plugin's "
                               "hcpcs_system setting may write the https:// form CARIN uses instead.",
                       patternCodeableConcept=cc(HCPCS, "H0038")),
                el("Encounter.subject", min=1, type=ref(sd("peer-support-patient")), mustSupport=True),
                el("Encounter.participant", min=1, mustSupport=True),
                el("Encounter.participant.type", min=1),
                el("Encounter.participant.individual", min=1,
                   type=ref(sd("peer-support-practitioner"), sd("peer-support-practitionerrole"))),
                el("Encounter.period", min=1),
                el("Encounter.period.start", min=1),
                el("Encounter.length", min=1, short="Length in minutes", mustSupport=True),
                el("Encounter.length.system", min=1, fixedUri=UCUM),
                el("Encounter.length.code", min=1, fixedCode="min"),
            ])
    profile(x, "peer-support-procedure", "Peer-support activity",
            "One activity a peer specialist carried out in an encounter.", "Procedure", [
                el("Procedure.status", mustSupport=True),
                el("Procedure.code", min=1, binding={"strength": "required",
                                                     "valueSet": vs("peer-support-activity")}),
                el("Procedure.subject", type=ref(sd("peer-support-patient"))),
                el("Procedure.encounter", min=1, type=ref(sd("peer-support-encounter"))),
                el("Procedure.performed[x]", min=1, type=[{"code": "Period"}]),
                el("Procedure.performer", min=1),
                el("Procedure.performer.function", patternCodeableConcept=cc(NUCC, "175T00000X")),
            ])

    # --- recovery plan
    profile(x, "recovery-plan", "Recovery plan",
            "A person's recovery plan: the goals they set, their strengths as supporting information, "
            "written with or by the person.", "CarePlan", [
                el("CarePlan.status", mustSupport=True),
                el("CarePlan.intent", fixedCode="plan"),
                el("CarePlan.subject", type=ref(R4 + "Patient"), mustSupport=True),
                el("CarePlan.author", mustSupport=True,
                   comment="The person, when they wrote the plan themself; else put them in contributor."),
                el("CarePlan.supportingInfo", mustSupport=True,
                   comment="Strengths (recovery-strength Observations) and other context."),
                el("CarePlan.goal", type=ref(R4 + "Goal"), mustSupport=True,
                   comment="0..*: a plan can exist before its goals are set (a crisis plan, a first "
                           "meeting), and the recovery_plan format allows it. Goals filed under a recovery "
                           "dimension claim recovery-goal; an unassigned goal claims none."),
                el("CarePlan.activity.reference", mustSupport=True),
                el("CarePlan.activity.detail",
                   comment="Prefer activity.reference; detail was removed in R5."),
                el("CarePlan.activity.detail.code",
                   binding={"strength": "extensible", "valueSet": vs("recovery-plan-activity")}),
            ])


# Recovery dimension -> SDOHCC category codes (domain.md §1.8, §2.1) and PCO
# goal domains (§1.8, §2.2). Equivalence is read from the target: narrower =
# the target means less than the dimension.
SDOHCC_MAP = {
    "health": [],
    "home": [("housing-instability", "narrower", "Housing instability is one part of having a stable home."),
             ("homelessness", "narrower", "Homelessness is the absence of the home the dimension names."),
             ("inadequate-housing", "narrower", "Safety and quality of housing, one part of home."),
             ("utility-insecurity", "narrower", "Utilities are one condition of a safe home."),
             ("food-insecurity", "relatedto",
              "Often listed with home among the SDOH categories; food security overlaps with a stable home but is "
              "not part of the dimension's definition.")],
    "purpose": [("employment-status", "narrower", "Work is one of the meaningful activities of purpose."),
                ("educational-attainment", "narrower", "School is one of the meaningful activities of purpose."),
                ("financial-insecurity", "relatedto",
                 "Income and resources to take part in society are part of purpose; financial insecurity "
                 "is their lack.")],
    "community": [("social-connection", "narrower",
                   "Relationships and social networks, the core of community."),
                  ("incarceration-status", "relatedto",
                   "Incarceration cuts a person off from community; a barrier, not the dimension itself."),
                  ("language-access", "relatedto",
                   "Language access affects taking part in community networks; a barrier, not the dimension.")],
}
SDOHCC_UNMAPPED = {
    "health": "No SDOH Clinical Care category covers health or symptom management; map to no target.",
}
PCO_MAP = {
    "health": [("emotional-and-mental-health", "narrower", "Emotional and mental health, one part of health."),
               ("managing-conditions", "narrower", "Managing conditions and symptoms, one part of health."),
               ("improving-health-and-wellness", "narrower", "Healthy choices, one part of health."),
               ("medication-management", "narrower", "One part of managing one's health."),
               ("physical-function", "narrower", "Physical well-being, one part of health.")],
    "home": [("housing", "narrower", "Housing, the centre of the home dimension.")],
    "purpose": [("independence", "relatedto", "Independence is named in purpose; PCO uses it for daily "
                                            "living, which overlaps only partly.")],
    "community": [("social-functioning", "narrower", "Social functioning, one part of community.")],
}


def conceptmaps(x):
    src_vs = x.url("ValueSet", "recovery-dimension")
    src_cs = x.url("CodeSystem", "recovery-dimension")
    disp = {c: d for c, d, _ in RECOVERY_DIMENSIONS}

    def group(target, mapping, unmapped):
        elements = []
        for code, _, _ in RECOVERY_DIMENSIONS:
            targets = [{"code": t, "equivalence": eq, "comment": cm} for t, eq, cm in mapping.get(code, [])]
            if not targets:
                targets = [{"equivalence": "unmatched", "comment": unmapped.get(code, "No target.")}]
            elements.append({"code": code, "display": disp[code], "target": targets})
        return {"source": src_cs, "target": target, "element": elements}

    cm = x.header("ConceptMap", "recovery-dimension-to-sdohcc",
                  "RecoveryDimensionToSdohcc", "Recovery dimensions to SDOH Clinical Care categories",
                  "Maps each recovery dimension to the nearest SDOH Clinical Care (Gravity) category codes, "
                  "so that SDOH-aware receivers can read goals and observations filed under a dimension. "
                  "Target codes are from the SDOHCC category value set (STU 3 build, version 3.0.0 at the "
                  "time of writing; pin the version you exchange with). Several targets per dimension: a "
                  "receiver may add any of them as extra codings.")
    cm["sourceCanonical"] = src_vs
    cm["targetCanonical"] = "http://hl7.org/fhir/us/sdoh-clinicalcare/ValueSet/SDOHCC-ValueSetSDOHCategory"
    cm["group"] = [group(SDOHCC_CS, SDOHCC_MAP, SDOHCC_UNMAPPED)]
    x.add(cm)

    cm = x.header("ConceptMap", "recovery-dimension-to-pco",
                  "RecoveryDimensionToPco", "Recovery dimensions to Person-Centered Outcomes goal domains",
                  "Maps each recovery dimension to the nearest Person-Centered Outcomes goal-domain codes. "
                  "The code Ids are from the PCO IG source; the code-system URL is built from the IG's "
                  "canonical base and the code system's Id (not read from a published page), and the code "
                  "system is 'temporary' in the IG: check both before relying on this map.")
    cm["sourceCanonical"] = src_vs
    cm["group"] = [group(PCO_DOMAINS_CS, PCO_MAP, {})]
    x.add(cm)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default=DEFAULT_BASE)
    ap.add_argument("--date", default="2026-11-30")
    ap.add_argument("out", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "profiles"))
    a = ap.parse_args()
    x = Ctx(a.base, a.date)
    build(x)
    for name, res in x.out:
        with open(os.path.join(a.out, name), "w", encoding="utf-8") as f:
            json.dump(res, f, indent=2, ensure_ascii=False)
            f.write("\n")
    print("%d resources written to %s" % (len(x.out), os.path.normpath(a.out)))


if __name__ == "__main__":
    main()
