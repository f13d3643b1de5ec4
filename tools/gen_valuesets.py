#!/usr/bin/env python3
"""Generate core/fhir/gen/valueset_data.c: the FHIR R4 core ValueSets that
core elements bind `required` or `extensible`, as sorted code tables, and the
bindings themselves (element path -> strength, ValueSet).

    python3 tools/gen_valuesets.py ../shared/fhir-r4/package ../shared/fhir-r4/expansions \
        core/fhir/gen/valueset_data.c

Bindings come from the snapshots of the core StructureDefinitions: every
resource and data type (specialisations) and the constrained quantity types
the model holds as types of their own (Age, Distance, Duration, Count). A binding's path is the model's: the type
name, then the element names, "[x]" dropped ("Observation.component.code",
"Quantity.comparator").

A ValueSet's codes are its expansion's (hl7.fhir.r4.expansions), abstract
and inactive entries included (they are in the published list). A ValueSet
without an expansion whose compose includes whole code systems only, each
a complete CodeSystem of the package, gets those systems' codes. A ValueSet
whose codes cannot be listed is left out, and so is every binding to it:
an empty expansion (mime types), a grammar (UCUM units, BCP-13 and BCP-47
codes), a system the package lacks (LOINC answer lists). Leaving one out
means its codes are not checked, never that they are wrong.
"""
import glob
import json
import os
import sys

# Systems whose codes are a grammar: no list of codes can stand for them.
GRAMMARS = {"http://unitsofmeasure.org", "urn:ietf:bcp:13", "urn:ietf:bcp:47"}
# Constrained data types the model holds as types of their own.
QUANTITY_TYPES = {"Age", "Distance", "Duration", "Count"}
STRENGTHS = ("required", "extensible")


def load(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def flatten(contains, out):
    for c in contains or []:
        if "code" in c:
            out.add((c.get("system", ""), c["code"]))
        flatten(c.get("contains"), out)


def cs_concepts(concepts, out, system):
    for c in concepts or []:
        out.add((system, c["code"]))
        cs_concepts(c.get("concept"), out, system)


def grammar_include(vs):
    for inc in (vs.get("compose") or {}).get("include", []):
        if inc.get("system") in GRAMMARS and "concept" not in inc:
            return True
    return False


def codes_of(url, expansions, codesystems):
    """The set of (system, code) of the ValueSet url, or None when it cannot be listed."""
    vs = expansions.get(url)
    if vs is None or grammar_include(vs):
        return None
    out = set()
    flatten((vs.get("expansion") or {}).get("contains"), out)
    if out:
        return out
    includes = (vs.get("compose") or {}).get("include", [])
    if not includes:
        return None
    for inc in includes:
        cs = codesystems.get(inc.get("system"))
        if inc.get("concept") or inc.get("filter") or inc.get("valueSet") or not cs:
            return None
        if cs.get("content") != "complete":
            return None
        cs_concepts(cs.get("concept"), out, inc["system"])
    if (vs.get("compose") or {}).get("exclude"):
        return None
    return out or None


def model_path(type_name, path):
    parts = path.split(".")
    return ".".join([type_name] + [p[:-3] if p.endswith("[x]") else p for p in parts[1:]])


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: gen_valuesets.py PACKAGE_DIR EXPANSIONS_DIR OUT.c")
    pkg, expdir, out = sys.argv[1:]
    expansions = {}
    for f in sorted(glob.glob(os.path.join(expdir, "*.json"))):
        vs = load(f)
        if vs.get("resourceType") == "ValueSet" and vs.get("url"):
            expansions[vs["url"]] = vs
    codesystems = {}
    for f in sorted(glob.glob(os.path.join(pkg, "CodeSystem-*.json"))):
        cs = load(f)
        if cs.get("url"):
            codesystems[cs["url"]] = cs
    if not expansions:
        sys.exit("no ValueSet in %s" % expdir)

    bindings = {}  # model path -> (strength, url)
    for f in sorted(glob.glob(os.path.join(pkg, "StructureDefinition-*.json"))):
        sd = load(f)
        if sd.get("kind") not in ("resource", "complex-type"):
            continue
        name = sd.get("name") if sd.get("derivation") == "constraint" else sd.get("type")
        if sd.get("derivation") == "constraint" and name not in QUANTITY_TYPES:
            continue
        for e in (sd.get("snapshot") or {}).get("element", []):
            b = e.get("binding") or {}
            if b.get("strength") not in STRENGTHS or not b.get("valueSet") or "." not in e["path"]:
                continue
            types = {t["code"] for t in e.get("type", [])}
            if not types & {"code", "Coding", "CodeableConcept"}:
                continue
            key = model_path(name, e["path"])
            url = b["valueSet"].split("|")[0]
            if key in bindings and bindings[key] != (b["strength"], url):
                sys.exit("%s: two bindings" % key)
            bindings[key] = (b["strength"], url)

    valuesets = {}
    left_out = set()
    for _, url in bindings.values():
        if url in valuesets or url in left_out:
            continue
        codes = codes_of(url, expansions, codesystems)
        if codes is None:
            left_out.add(url)
        else:
            valuesets[url] = codes
    rows = sorted((k, s, u) for k, (s, u) in bindings.items() if u in valuesets)
    urls = sorted(valuesets)
    systems = sorted({s for codes in valuesets.values() for s, _ in codes})
    sysidx = {s: i for i, s in enumerate(systems)}
    vsidx = {u: i for i, u in enumerate(urls)}

    def cstr(s):
        if any(ord(ch) < 0x20 or ch in '"\\' for ch in s):
            return json.dumps(s)
        return '"%s"' % s

    with open(out, "w", encoding="utf-8") as f:
        f.write("/* Generated by tools/gen_valuesets.py from the FHIR R4 (4.0.1) StructureDefinitions and\n"
                " * ValueSet expansions. Do not edit: run `make valuesets`.\n"
                " * Left out (codes that cannot be listed): %s. */\n" % ", ".join(sorted(left_out)))
        f.write('#include "fhir/valueset.h"\n\n')
        f.write("const char *const valueset_systems[] = {\n")
        for s in systems:
            f.write("\t%s,\n" % cstr(s))
        f.write("};\nconst size_t valueset_nsystems = sizeof valueset_systems / sizeof valueset_systems[0];\n\n")
        f.write("const struct valueset_code valueset_codes[] = {\n")
        first = {}
        n = 0
        for u in urls:
            first[u] = n
            f.write("\t/* %s */\n" % u)
            for s, c in sorted(valuesets[u], key=lambda sc: (sc[1].encode(), sc[0].encode())):
                f.write("\t{%s, %d},\n" % (cstr(c), sysidx[s]))
                n += 1
        f.write("};\nconst size_t valueset_ncodes = sizeof valueset_codes / sizeof valueset_codes[0];\n\n")
        f.write("const struct valueset_def valueset_defs[] = {\n")
        for u in urls:
            f.write("\t{%s, %d, %d},\n" % (cstr(u), first[u], len(valuesets[u])))
        f.write("};\nconst size_t valueset_ndefs = sizeof valueset_defs / sizeof valueset_defs[0];\n\n")
        f.write("const struct valueset_binding valueset_bindings[] = {\n")
        for k, s, u in sorted(rows, key=lambda r: r[0].encode()):
            f.write("\t{%s, %s, %d},\n" % (cstr(k), "VALUESET_REQUIRED" if s == "required" else
                                          "VALUESET_EXTENSIBLE", vsidx[u]))
        f.write("};\nconst size_t valueset_nbindings = sizeof valueset_bindings / sizeof valueset_bindings[0];\n")
    print("%d bindings, %d ValueSets, %d codes, %d systems written to %s; left out: %d ValueSets"
          % (len(rows), len(urls), n, len(systems), out, len(left_out)), file=sys.stderr)


if __name__ == "__main__":
    main()
