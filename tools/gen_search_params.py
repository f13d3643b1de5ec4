#!/usr/bin/env python3
"""Generate core/fhir/gen/search_params_data.c from the FHIR R4 SearchParameter
definitions (their FHIRPath `expression`) for every R4 resource type (the
StructureDefinitions of kind resource that are not abstract).

    python3 tools/gen_search_params.py ../shared/fhir-r4/package core/fhir/gen/search_params_data.c

Only these FHIRPath forms are understood:
a dotted path, `.where(resolve() is Type)` (the reference must point at Type),
`.as(Type)` and `(path as Type)` (one branch of a choice element),
`.where(name='value')` on the last element (only values whose member `name`
equals `value`, e.g. telecom.where(system='email')). A branch in
any other form (for example `deceased.exists() and deceased != false`, or
relatedArtifact.where(type='composed-of').resource) is written with its
FHIRPath expression, which the indexer evaluates with the FHIRPath engine
(path NULL), and listed on stderr. A branch whose result is a resource inside
the resource (Bundle.entry[0].resource) is written the same way with the
definition's one target type as its target: the indexer indexes that resource's
own parameters under the parameter's name, for chains
(Bundle?composition.subject=...). Choice elements named without a type
(`effective`) are written as `effective[x]`, found from the StructureDefinitions.
"""
import glob
import json
import os
import re
import sys

KINDS = {"token": "SEARCH_PARAM_TOKEN", "reference": "SEARCH_PARAM_REFERENCE",
         "date": "SEARCH_PARAM_DATE", "string": "SEARCH_PARAM_STRING",
         "number": "SEARCH_PARAM_NUMBER", "quantity": "SEARCH_PARAM_QUANTITY",
         "uri": "SEARCH_PARAM_URI"}
# Resource-level parameters every type gets (others such as _content need
# more than an index and are not offered).
RESOURCE_PARAMS = {"_id", "_lastUpdated", "_tag", "_security", "_profile", "_source"}

IDENT = r"[A-Za-z][A-Za-z0-9]*"
# Branches whose result is a resource inside the resource, not a reference:
# written with the definition's one target type as the row's target (the
# resource embedded), its parameters indexed under the parameter's name.
RESOURCE_VALUED = {"Bundle.entry[0].resource"}


def resource_types(pkg):
    """Every concrete R4 resource type (its StructureDefinition a
    specialization of kind resource that is not abstract)."""
    out = []
    for fn in glob.glob(os.path.join(pkg, "StructureDefinition-*.json")):
        with open(fn) as f:
            sd = json.load(f)
        if sd.get("kind") == "resource" and not sd.get("abstract") and sd.get("derivation") == "specialization":
            out.append(sd["type"])
    return sorted(out)


def choice_paths(pkg, rtype):
    with open(os.path.join(pkg, "StructureDefinition-%s.json" % rtype)) as f:
        sd = json.load(f)
    out = set()
    for e in sd["snapshot"]["element"]:
        p = e["path"]
        if p.endswith("[x]"):
            out.add(p[: -3])
    return out


def reference_targets(pkg, rtype):
    """Element path (as the table writes it, below the type) -> the resource
    types its Reference may point at, from the StructureDefinition."""
    with open(os.path.join(pkg, "StructureDefinition-%s.json" % rtype)) as f:
        sd = json.load(f)
    out = {}
    for e in sd["snapshot"]["element"]:
        names = set()
        for t in e.get("type", []):
            if t.get("code") != "Reference":
                continue
            for prof in t.get("targetProfile", []):
                names.add(prof.rsplit("/", 1)[-1])
        if names and "." in e["path"]:
            out[e["path"].split(".", 1)[1]] = names
    return out


def mark_choices(rtype, segs, choices):
    out = []
    for i, s in enumerate(segs):
        full = ".".join([rtype] + segs[: i] + [s])
        # a choice is marked only when its type is not given
        out.append(s + "[x]" if full in choices else s)
    return out


def cap(t):
    return t[0].upper() + t[1:]


def parse_branch(rtype, expr, choices):
    """Returns (path, target, filter) or None when the form is not understood."""
    e = expr.strip()
    m = re.fullmatch(r"(%s(?:\.%s)*)\.where\((%s)='([^']*)'\)" % (IDENT, IDENT, IDENT), e)
    if m:
        inner = parse_branch(rtype, m.group(1), choices)
        if inner is None or inner[2] is not None:
            return None
        return inner[0], inner[1], "%s=%s" % (m.group(2), m.group(3))
    target = None
    m = re.fullmatch(r"\((%s(?:\.%s)*) as (%s)\)((?:\.%s)*)" % (IDENT, IDENT, IDENT, IDENT), e)
    if m:
        segs = m.group(1).split(".")[1:]
        segs[-1] = segs[-1] + cap(m.group(2))
        rest = [s for s in m.group(3).split(".") if s]
        segs = mark_choices(rtype, segs[:-1], choices) + [segs[-1]] + rest
        return ".".join(segs), None, None
    m = re.fullmatch(r"(%s(?:\.%s)*)\.as\((%s)\)" % (IDENT, IDENT, IDENT), e)
    if m:
        segs = m.group(1).split(".")[1:]
        segs = mark_choices(rtype, segs[:-1], choices) + [segs[-1] + cap(m.group(2))]
        return ".".join(segs), None, None
    m = re.fullmatch(r"(%s(?:\.%s)*)\.where\(resolve\(\) is (%s)\)" % (IDENT, IDENT, IDENT), e)
    if m:
        e, target = m.group(1), m.group(2)
    if re.fullmatch(r"%s(?:\.%s)*" % (IDENT, IDENT), e):
        segs = e.split(".")[1:]
        return ".".join(mark_choices(rtype, segs, choices)), target, None
    return None


def targets_of(sp, target, allowed=None):
    """The resource types a reference parameter may point at, "A|B" sorted:
    the branch's own `resolve() is Type`, else the definition's target list
    (shared by all its base types) narrowed to what the element itself may
    reference (allowed, from the StructureDefinition, when known and not
    Resource); NULL when it has none, or for other kinds."""
    if sp.get("type") != "reference":
        return None
    if target:
        return target
    types = set(sp.get("target", []))
    if allowed and "Resource" not in allowed and types & allowed:
        types &= allowed
    return "|".join(sorted(types)) or None


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gen_search_params.py PACKAGE_DIR OUT.c")
    pkg, out_path = sys.argv[1], sys.argv[2]
    types = resource_types(pkg)
    choices = {t: choice_paths(pkg, t) for t in types}
    refs = {t: reference_targets(pkg, t) for t in types}
    rows = []
    for fn in sorted(glob.glob(os.path.join(pkg, "SearchParameter-*.json"))):
        with open(fn) as f:
            sp = json.load(f)
        kind = KINDS.get(sp.get("type"))
        if not kind or not sp.get("expression") or sp.get("experimental"):
            continue  # (the package's example definitions are experimental)
        bases = sp.get("base", [])
        branches = [b.strip() for b in sp["expression"].split(" | ")]
        if "Resource" in bases:
            if sp["code"] not in RESOURCE_PARAMS:
                continue
            for b in branches:
                if not b.startswith("Resource."):
                    continue
                parsed = parse_branch("Resource", b, set())
                if parsed:
                    rows.append(("Resource", sp["code"], kind) + parsed + (sp["url"], targets_of(sp, parsed[1]), None))
            continue
        for t in bases:
            if t not in choices:
                continue
            for b in branches:
                if not (b.startswith(t + ".") or b.startswith("(" + t + ".")):
                    continue
                parsed = parse_branch(t, b, choices[t])
                if parsed is None:
                    if b in RESOURCE_VALUED:
                        one = sp.get("target", [])
                        if len(one) != 1:
                            sys.exit("%s %s: a resource-valued branch needs one target type" % (t, sp["code"]))
                        print("embedded %s %s: %s (a %s)" % (t, sp["code"], b, one[0]), file=sys.stderr)
                        rows.append((t, sp["code"], kind, None, one[0], None, sp["url"], one[0], b))
                        continue
                    print("FHIRPath %s %s: %s" % (t, sp["code"], b), file=sys.stderr)
                    rows.append((t, sp["code"], kind, None, None, None, sp["url"], targets_of(sp, None), b))
                    continue
                rows.append((t, sp["code"], kind) + parsed +
                            (sp["url"], targets_of(sp, parsed[1], refs[t].get(parsed[0])), None))
    rows = sorted(set(rows), key=lambda r: tuple("" if x is None else x for x in r))

    def q(s):
        return "NULL" if s is None else '"%s"' % s

    def c_str(s):
        return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')

    with open(out_path, "w") as f:
        f.write("/* Generated by tools/gen_search_params.py from the FHIR R4 SearchParameter\n"
                " * definitions in fhir-r4/package; do not edit. Rows are sorted by resource\n"
                " * type, then parameter code; a parameter may have several rows. */\n")
        f.write('#include "fhir/search_params.h"\n\n')
        f.write("const struct search_param_def search_params_data[] = {\n")
        for r in rows:
            expr = "NULL" if r[8] is None else c_str(r[8])
            f.write("\t{%s, %s, %s, %s, %s, %s,\n\t %s, %s, %s},\n" % (q(r[0]), q(r[1]), r[2], q(r[3]), q(r[4]),
                                                                q(r[5]), q(r[6]), q(r[7]), expr))
        f.write("};\n\nconst size_t search_params_count = sizeof search_params_data / sizeof search_params_data[0];\n")
    print("%d rows written to %s" % (len(rows), out_path), file=sys.stderr)


if __name__ == "__main__":
    main()
