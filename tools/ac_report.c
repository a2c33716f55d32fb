#include "ac_report.h"

#include <math.h>

void ac_report_xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '<') fputs("&lt;", f);
        else if (ch == '>') fputs("&gt;", f);
        else if (ch == '&') fputs("&amp;", f);
        else if (ch == '"') fputs("&quot;", f);
        else if (ch < 0x20 && ch != '\n' && ch != '\t') fputc(' ', f); /* not allowed in XML 1.0 */
        else fputc(ch, f);
    }
}

void ac_report_json_num(cJSON *obj, const char *key, double x)
{
    if (isfinite(x)) cJSON_AddNumberToObject(obj, key, x);
    else cJSON_AddStringToObject(obj, key, isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
}

cJSON *ac_report_json_coord(const ac_coord *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "seq", c->seq);
    cJSON_AddNumberToObject(o, "head", c->head);
    cJSON_AddNumberToObject(o, "row", c->row);
    cJSON_AddNumberToObject(o, "dim", c->dim);
    return o;
}
