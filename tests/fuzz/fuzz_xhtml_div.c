/* libFuzzer harness: the narrative check's fast path (fhir_xml_div_plain,
 * no libxml2). The input is a div as it arrives in JSON. Whatever the fast
 * path calls plain, libxml2 parses as a well-formed <div> in the XHTML
 * namespace; and the narrative check's answer is libxml2's, whichever path
 * gave it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhir_xml_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	/* no terminator after the text: the checks read only len bytes */
	char *s = malloc(size ? size : 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	bool parsed = fhir_xml_div_parsed_ok(s, size);
	if (fhir_xml_div_plain(s, size) && !parsed)
		abort();
	if (fhir_xml_valid_div(s, size) != parsed)
		abort();
	free(s);
	return 0;
}
