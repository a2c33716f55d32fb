/* Pieces of the machine-readable reports (--json, --junit) that run, sweep
 * and verify share. */
#ifndef AC_REPORT_H
#define AC_REPORT_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "ac_verdict.h"

/* XML 1.0 text: & < > " escaped, other control characters but \n and \t as spaces. */
void ac_report_xml_text(FILE *f, const char *s);
/* A number into a JSON object; NaN and the infinities as the strings "nan", "inf", "-inf". */
void ac_report_json_num(cJSON *obj, const char *key, double x);
/* {"seq", "head", "row", "dim"} of a verdict's coordinate (NULL when out of memory). */
cJSON *ac_report_json_coord(const ac_coord *c);

#endif
