#!/usr/bin/env python3
"""Generates core/fhir/gen/model_data.c, the compact FHIR R4 model table, from the
official StructureDefinitions of the R4 package.

    python3 tools/gen_model.py PACKAGE_DIR OUT.c

Reads every StructureDefinition that specialises a type (primitive types,
complex types, resources; abstract bases included) and writes:

  model_types[]       every type, sorted by name: primitives, complex types,
                      resources, and one synthetic type per backbone element
                      named by its path ("Bundle.entry")
  model_elems[]       every type's child elements in definition order
  model_elem_types[]  the allowed types of each element (several for a
                      choice element "value[x]")
  model_elem_refs[]   per element, where its Reference targets start in
  model_ref_targets[] (resource type indexes, each list ended by
                      MODEL_NONE), or MODEL_NONE when any resource may be
                      referenced (or the element holds no Reference)

The output is deterministic and committed; an ordinary build needs neither
this script nor the package. `make model` reruns it.
"""
import glob
import json
import os
import sys

FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
NUMBER_PRIMITIVES = {"integer", "decimal", "positiveInt", "unsignedInt"}
KIND = {"primitive-type": "MODEL_PRIMITIVE", "complex-type": "MODEL_COMPLEX", "resource": "MODEL_RESOURCE"}


def c_str(s):
    if s is None:
        return "NULL"
    out = []
    for ch in s:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) > 0x7E:
            for b in ch.encode("utf-8"):
                out.append("\\%03o" % b)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def type_code(t):
    code = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext["url"] == FHIR_TYPE_EXT:
                return ext["valueUrl"]
        return "string"
    return code


def main():
    pkg, out = sys.argv[1], sys.argv[2]
    sds = []
    for f in sorted(glob.glob(os.path.join(pkg, "StructureDefinition-*.json"))):
        with open(f, encoding="utf-8") as fh:
            sd = json.load(fh)
        if sd.get("kind") not in KIND:
            continue
        if sd.get("derivation") == "constraint":
            continue
        sds.append(sd)

    types = {}  # name -> dict(kind, elems=[...], regex, json, base)

    for sd in sds:
        name = sd["type"] if sd.get("derivation") else sd["id"]
        kind = KIND[sd["kind"]]
        base = sd.get("baseDefinition", "").rsplit("/", 1)[-1] or None
        types[name] = {"kind": kind, "elems": [], "regex": None, "base": base,
                       "abstract": bool(sd.get("abstract"))}
        for e in sd["snapshot"]["element"]:
            path = e["path"]
            if "." not in path:
                continue
            parent, last = path.rsplit(".", 1)
            if sd["kind"] == "primitive-type" and last == "value":
                for t in e.get("type", []):
                    for ext in t.get("extension", []):
                        if ext["url"] == REGEX_EXT:
                            types[name]["regex"] = ext["valueString"]
                continue
            choice = last.endswith("[x]")
            if choice:
                last = last[:-3]
            rep = e.get("representation", [])
            if "contentReference" in e:
                tcodes = [e["contentReference"].lstrip("#").split("#")[-1]]
            else:
                tcodes = [type_code(t) for t in e.get("type", [])]
            if parent.count(".") == 0 and last == "id" and not rep and kind == "MODEL_RESOURCE":
                tcodes = ["id"]  # Resource.id is an id; the package writes System.String
            if tcodes in (["BackboneElement"], ["Element"]) and "contentReference" not in e:
                tcodes = [path]
                types[path] = {"kind": "MODEL_BACKBONE", "elems": [], "regex": None, "base": None,
                               "abstract": False}
            mx = e["max"]
            if mx not in ("0", "1", "*"):
                # core/validate.c checks the maximum as 0, "single" or "array"
                raise SystemExit("%s: max %s is not 0, 1 or *" % (path, mx))
            if parent not in types:
                raise SystemExit("parent %s of %s not defined first" % (parent, path))
            targets = None  # None: any resource
            for t in e.get("type", []):
                if t.get("code") == "Reference" and t.get("targetProfile"):
                    names_ = [tp.rsplit("/", 1)[-1] for tp in t["targetProfile"]]
                    if "Resource" not in names_:
                        targets = sorted(set(names_))
            types[parent]["elems"].append({
                "targets": targets,
                "name": last,
                "types": tcodes,
                "min": e["min"],
                "max": 0xFFFF if mx == "*" else int(mx),
                "choice": choice,
                "attr": "xmlAttr" in rep,
                "summary": bool(e.get("isSummary")),
                "modifier": bool(e.get("isModifier")),
            })

    names = sorted(types)
    index = {n: i for i, n in enumerate(names)}
    for n in names:
        for el in types[n]["elems"]:
            for t in el["types"]:
                if t not in index:
                    raise SystemExit("unknown type %s in %s.%s" % (t, n, el["name"]))

    lines = []
    w = lines.append
    w("/* Generated by tools/gen_model.py from the FHIR R4 (4.0.1) StructureDefinitions.")
    w(" * Do not edit: run `make model`. */")
    w('#include "fhir/model.h"')
    w("")
    elem_rows, etype_rows, type_rows = [], [], []
    ref_rows, ref_targets, ref_lists = [], [], {}
    for n in names:
        t = types[n]
        first = len(elem_rows)
        for el in t["elems"]:
            tfirst = len(etype_rows)
            for tc in el["types"]:
                etype_rows.append(index[tc])
            flags = []
            if el["choice"]:
                flags.append("MODEL_F_CHOICE")
            if el["attr"]:
                flags.append("MODEL_F_ATTR")
            if el["summary"]:
                flags.append("MODEL_F_SUMMARY")
            if el["modifier"]:
                flags.append("MODEL_F_MODIFIER")
            if el["targets"]:
                key = tuple(el["targets"])
                if key not in ref_lists:
                    ref_lists[key] = len(ref_targets)
                    for tn in key:
                        if tn not in index:
                            raise SystemExit("unknown reference target %s in %s.%s" % (tn, n, el["name"]))
                        ref_targets.append(index[tn])
                    ref_targets.append(0xFFFF)
                ref_rows.append(ref_lists[key])
            else:
                ref_rows.append(0xFFFF)
            elem_rows.append("\t{%s, %d, %d, %d, %d, %s, %d}," % (
                c_str(el["name"]), tfirst, len(el["types"]), el["min"], el["max"],
                "|".join(flags) or "0", len(el["name"])))
        if t["kind"] == "MODEL_PRIMITIVE":
            js = "MODEL_JSON_BOOL" if n == "boolean" else (
                "MODEL_JSON_NUMBER" if n in NUMBER_PRIMITIVES else "MODEL_JSON_STRING")
        else:
            js = "MODEL_JSON_OBJECT"
        base = index.get(t["base"], 0xFFFF) if t["base"] else 0xFFFF
        type_rows.append("\t{%s, %s, %s, %d, %d, %d, %d, %s}," % (
            c_str(n), t["kind"], js, first, len(t["elems"]), base, 1 if t["abstract"] else 0, c_str(t["regex"])))

    w("const struct model_type model_types[] = {")
    lines.extend(type_rows)
    w("};")
    w("const size_t model_ntypes = %d;" % len(type_rows))
    w("")
    w("const struct model_elem model_elems[] = {")
    lines.extend(elem_rows)
    w("};")
    w("const size_t model_nelems = %d;" % len(elem_rows))
    w("")
    w("const uint16_t model_elem_types[] = {")
    for i in range(0, len(etype_rows), 16):
        w("\t" + ", ".join(str(x) for x in etype_rows[i:i + 16]) + ",")
    w("};")
    w("const size_t model_nelem_types = %d;" % len(etype_rows))
    w("")
    w("const uint16_t model_elem_refs[] = {")
    for i in range(0, len(ref_rows), 16):
        w("\t" + ", ".join(str(x) for x in ref_rows[i:i + 16]) + ",")
    w("};")
    w("const uint16_t model_ref_targets[] = {")
    for i in range(0, len(ref_targets), 16):
        w("\t" + ", ".join(str(x) for x in ref_targets[i:i + 16]) + ",")
    w("};")
    w("const size_t model_nref_targets = %d;" % len(ref_targets))
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    print("%s: %d types, %d elements, %d element types" % (out, len(type_rows), len(elem_rows), len(etype_rows)))


if __name__ == "__main__":
    main()
