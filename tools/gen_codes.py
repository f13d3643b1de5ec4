#!/usr/bin/env python3
"""Generates the code packs under profiles/codes/ from the public code lists.

    python3 tools/gen_codes.py SHARED_CODES_DIR OUT_DIR

Inputs (UTF-8 TSV with one header row, see SHARED_CODES_DIR/SOURCES.md):
  icd10cm-2026.tsv   code, billable (1/0), short, long     ICD-10-CM FY2026
  hcpcs-2025.tsv     code, short, long, type, …, term date HCPCS Level II 2025

Output: one pack per code system, in the format profiles/codes/README.md
describes (a few "#key<TAB>value" header lines, then one
"code<TAB>flags<TAB>display" line per code, sorted by code in byte order).
The display is the long description. Flags: B billable (ICD-10-CM order-file
flag), M modifier (HCPCS), I inactive (HCPCS code with a termination date),
"-" none.

The output is deterministic and committed; an ordinary build needs neither
this script nor the inputs. `make codes` reruns it. CPT is never generated:
its descriptors are licensed (see the README).
"""
import csv
import os
import sys

FORMAT_VERSION = "1"


def read_tsv(path, want_header):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0] != want_header:
        sys.exit(f"{path}: unexpected header {rows[0] if rows else None!r}")
    for n, r in enumerate(rows[1:], start=2):
        if len(r) != len(want_header):
            sys.exit(f"{path}: line {n}: {len(r)} columns, want {len(want_header)}")
    return rows[1:]


def clean(text, where):
    if any(ord(c) < 0x20 for c in text):
        sys.exit(f"{where}: control character in text")
    return text.strip()


def write_pack(path, header, entries):
    entries.sort(key=lambda e: e[0].encode("utf-8"))
    for a, b in zip(entries, entries[1:]):
        if a[0] == b[0]:
            sys.exit(f"{path}: duplicate code {a[0]}")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(f"#crosswalk-codes\t{FORMAT_VERSION}\n")
        for k, v in header:
            f.write(f"#{k}\t{v}\n")
        f.write(f"#count\t{len(entries)}\n")
        for code, flags, display in entries:
            f.write(f"{code}\t{flags or '-'}\t{display}\n")
    os.replace(tmp, path)
    print(f"  {path}: {len(entries)} codes, {os.path.getsize(path)} bytes")


def icd10cm(src, out):
    path = os.path.join(src, "icd10cm-2026.tsv")
    rows = read_tsv(path, ["code", "billable", "short", "long"])
    entries = []
    for n, (code, billable, _short, long_) in enumerate(rows, start=2):
        if billable not in ("0", "1"):
            sys.exit(f"{path}: line {n}: billable is {billable!r}")
        entries.append((clean(code, path), "B" if billable == "1" else "", clean(long_, path)))
    write_pack(os.path.join(out, "icd10cm-2026.tsv"), [
        ("system", "http://hl7.org/fhir/sid/icd-10-cm"),
        ("version", "2026"),
        ("name", "ICD-10-CM"),
        ("title", "ICD-10-CM FY2026 (valid 2025-10-01 to 2026-09-30)"),
        ("billable", "yes"),
        ("source", "CDC/NCHS icd10cm-order-2026.txt (public domain)"),
    ], entries)


def hcpcs(src, out):
    path = os.path.join(src, "hcpcs-2025.tsv")
    header = ["code", "short", "long", "type", "pricing_indicator", "coverage_code", "betos",
              "type_of_service", "asc_group", "add_date", "action_effective_year",
              "term_date_per_oct2024_file"]
    rows = read_tsv(path, header)
    entries = []
    for n, r in enumerate(rows, start=2):
        code, short, long_, kind, term = r[0], r[1], r[2], r[3], r[11]
        if kind not in ("procedure", "modifier"):
            sys.exit(f"{path}: line {n}: type is {kind!r}")
        flags = ("M" if kind == "modifier" else "") + ("I" if term else "")
        entries.append((clean(code, path), flags, clean(long_ or short, path)))
    write_pack(os.path.join(out, "hcpcs-2025.tsv"), [
        ("system", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"),
        ("version", "2025"),
        ("name", "HCPCS Level II"),
        ("title", "HCPCS Level II 2025 (October 2025 quarterly update)"),
        ("billable", "no"),
        ("source", "CMS HCPC2025_OCT_ANWEB_v2.txt, rebuilt (public domain)"),
    ], entries)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gen_codes.py SHARED_CODES_DIR OUT_DIR")
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    icd10cm(src, out)
    hcpcs(src, out)


if __name__ == "__main__":
    main()
