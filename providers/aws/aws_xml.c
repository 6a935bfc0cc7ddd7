/*
 * EC2 and STS answers (XML) read with libxml2: pure functions from a buffer to plain structs,
 * so that each is tested on canned answers and fuzzed without a server.
 *
 * The one idea: elements are found by local name along a path ("instancesSet/item/instanceId"),
 * ignoring namespaces (EC2 answers carry http://ec2.amazonaws.com/doc/2016-11-15/, moto drops
 * the trailing slash, STS has its own), and a value that does not fit its field is an error,
 * never silently cut: a truncated instance id would delete the wrong thing. The parser never
 * touches the network (XML_PARSE_NONET) and never expands entities or loads a DTD.
 */
#include "providers/aws/aws_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "lib/util.h"

#define XML_PARSE_OPTS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA)
#define XML_MAX_INPUT (16u * 1024 * 1024)

static xmlDocPtr xml_read(const char *body, size_t len, const char *what, struct pp_err *err)
{
	xmlDocPtr doc;

	if (!body || len == 0)
		return pp_err_set(err, PP_INTERNAL, "%s: empty answer", what), NULL;
	if (len > XML_MAX_INPUT)
		return pp_err_set(err, PP_INTERNAL, "%s: answer of %zu bytes is too large", what, len), NULL;
	doc = xmlReadMemory(body, (int)len, "answer.xml", NULL, XML_PARSE_OPTS);
	if (!doc || !xmlDocGetRootElement(doc)) {
		xmlFreeDoc(doc);
		return pp_err_set(err, PP_INTERNAL, "%s: answer is not well-formed XML", what), NULL;
	}
	return doc;
}

static bool xml_is(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNode *xml_child(const xmlNode *n, const char *name)
{
	if (!n)
		return NULL;
	for (xmlNode *c = n->children; c; c = c->next)
		if (xml_is(c, name))
			return c;
	return NULL;
}

static xmlNode *xml_next(xmlNode *n, const char *name)
{
	for (n = n ? n->next : NULL; n; n = n->next)
		if (xml_is(n, name))
			return n;
	return NULL;
}

/* Follows a '/'-separated path of child names; the first match at each step. */
static xmlNode *xml_path(const xmlNode *n, const char *path)
{
	char step[64];
	const char *p = path;

	while (n && *p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		if (len >= sizeof(step))
			return NULL;
		memcpy(step, p, len);
		step[len] = '\0';
		n = xml_child(n, step);
		p += len + (slash ? 1 : 0);
	}
	return (xmlNode *)n;
}

/* Text of the element at path below n into out. 0 found, 1 absent (out = ""), -1 too long. */
static int xml_text(const xmlNode *n, const char *path, char *out, size_t size)
{
	xmlNode *e = xml_path(n, path);
	xmlChar *t;
	int rc;

	out[0] = '\0';
	if (!e)
		return 1;
	t = xmlNodeGetContent(e);
	rc = pp_strlcpy(out, t ? (const char *)t : "", size) ? 0 : -1;
	xmlFree(t);
	if (rc < 0)
		out[0] = '\0';
	return rc;
}

static int xml_text_req(const xmlNode *n, const char *path, char *out, size_t size,
			const char *what, struct pp_err *err)
{
	int rc = xml_text(n, path, out, size);

	if (rc == 1 || (rc == 0 && !out[0]))
		return pp_err_set(err, PP_INTERNAL, "%s answer has no %s", what, path);
	if (rc < 0)
		return pp_err_set(err, PP_INTERNAL, "%s answer: %s is longer than %zu bytes", what, path,
				  size - 1);
	return 0;
}

static int xml_int(const xmlNode *n, const char *path, int64_t *ret, const char *what,
		   struct pp_err *err)
{
	char text[32];

	if (xml_text_req(n, path, text, sizeof(text), what, err) < 0)
		return -1;
	if (parse_int64(text, ret) < 0 || *ret < 0)
		return pp_err_set(err, PP_INTERNAL, "%s answer: %s is not a count: \"%.20s\"", what, path,
				  text);
	return 0;
}

/* ---- errors ---- */

int aws_xml_error(const char *body, size_t len, struct aws_error *ret)
{
	xmlDocPtr doc = xml_read(body, len, "error", NULL);
	xmlNode *root, *e;
	int rc = -1;

	ret->code[0] = ret->message[0] = '\0';
	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	/* EC2: <Response><Errors><Error>; STS: <ErrorResponse><Error> */
	e = xml_is(root, "Response") ? xml_path(root, "Errors/Error") :
	    xml_is(root, "ErrorResponse") ? xml_child(root, "Error") : NULL;
	if (e && xml_text(e, "Code", ret->code, sizeof(ret->code)) == 0 && ret->code[0]) {
		if (xml_text(e, "Message", ret->message, sizeof(ret->message)) < 0) {
			/* keep as much of a long message as fits */
			xmlChar *t = xmlNodeGetContent(xml_child(e, "Message"));

			pp_strlcpy(ret->message, t ? (const char *)t : "", sizeof(ret->message));
			xmlFree(t);
		}
		rc = 0;
	}
	xmlFreeDoc(doc);
	return rc;
}

/* ---- instances ---- */

static void xml_tags(const xmlNode *inst, struct aws_instance_info *ret)
{
	char key[AWS_TAG_KEY_MAX + 1];

	for (xmlNode *it = xml_path(inst, "tagSet/item"); it; it = xml_next(it, "item")) {
		if (xml_text(it, "key", key, sizeof(key)) != 0)
			continue;
		if (strcmp(key, "Name") == 0)
			xml_text(it, "value", ret->name, sizeof(ret->name));
		else if (strcmp(key, AWS_OWNER_TAG) == 0)
			xml_text(it, "value", ret->owner, sizeof(ret->owner));
		else if (strcmp(key, AWS_SANDBOX_TAG) == 0)
			xml_text(it, "value", ret->sandbox, sizeof(ret->sandbox));
	}
}

static bool xml_ip_usable(const char *ip)
{
	return ip[0] && strcmp(ip, "0.0.0.0") != 0;
}

static void xml_add_ip(struct aws_instance_info *ret, const char *ip)
{
	if (!xml_ip_usable(ip) || ret->n_private_ips == AWS_MAX_NICS)
		return;
	for (int i = 0; i < ret->n_private_ips; i++)
		if (strcmp(ret->private_ips[i], ip) == 0)
			return;
	pp_strlcpy(ret->private_ips[ret->n_private_ips++], ip, PROVIDER_IP_MAX);
}

static int xml_instance(const xmlNode *inst, struct aws_instance_info *ret, const char *what,
			struct pp_err *err)
{
	char ip[PROVIDER_IP_MAX], when[64];
	xmlNode *nic;

	memset(ret, 0, sizeof(*ret));
	if (xml_text_req(inst, "instanceId", ret->id, sizeof(ret->id), what, err) < 0)
		return -1;
	xml_text(inst, "instanceState/name", ret->state, sizeof(ret->state));
	/* every interface's private address, primary interface first (as upstream) */
	for (nic = xml_path(inst, "networkInterfaceSet/item"); nic; nic = xml_next(nic, "item")) {
		if (xml_text(nic, "privateIpAddress", ip, sizeof(ip)) == 0)
			xml_add_ip(ret, ip);
		if (!ret->public_ip[0])
			xml_text(nic, "association/publicIp", ret->public_ip, sizeof(ret->public_ip));
	}
	if (ret->n_private_ips == 0 && xml_text(inst, "privateIpAddress", ip, sizeof(ip)) == 0)
		xml_add_ip(ret, ip);
	if (!ret->public_ip[0])
		xml_text(inst, "ipAddress", ret->public_ip, sizeof(ret->public_ip));
	if (!xml_ip_usable(ret->public_ip))
		ret->public_ip[0] = '\0';
	if (xml_text(inst, "launchTime", when, sizeof(when)) == 0 &&
	    aws_parse_iso8601(when, &ret->launch_time) < 0)
		ret->launch_time = 0;
	xml_tags(inst, ret);
	return 0;
}

int aws_xml_run_instances(const char *body, size_t len, struct aws_instance_info *ret,
			  struct pp_err *err)
{
	xmlDocPtr doc = xml_read(body, len, "RunInstances", err);
	xmlNode *inst;
	int rc = -1;

	if (!doc)
		return -1;
	inst = xml_path(xmlDocGetRootElement(doc), "instancesSet/item");
	if (!inst)
		pp_err_set(err, PP_INTERNAL, "RunInstances answer has no instancesSet/item");
	else
		rc = xml_instance(inst, ret, "RunInstances", err);
	xmlFreeDoc(doc);
	return rc;
}

void aws_instance_list_free(struct aws_instance_list *l)
{
	if (!l)
		return;
	free(l->items);
	l->items = NULL;
	l->n = 0;
	l->next_token[0] = '\0';
}

static int xml_list_add(struct aws_instance_list *l, const xmlNode *inst, struct pp_err *err)
{
	struct aws_instance_info info;

	if (xml_instance(inst, &info, "DescribeInstances", err) < 0)
		return -1;
	l->items = pp_xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
	l->items[l->n++] = info;
	return 0;
}

int aws_xml_describe_instances(const char *body, size_t len, struct aws_instance_list *ret,
			       struct pp_err *err)
{
	xmlDocPtr doc = xml_read(body, len, "DescribeInstances", err);
	struct aws_instance_list l = { 0 };
	xmlNode *root, *res, *inst;

	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!xml_child(root, "reservationSet")) {
		pp_err_set(err, PP_INTERNAL, "DescribeInstances answer has no reservationSet");
		goto fail;
	}
	for (res = xml_path(root, "reservationSet/item"); res; res = xml_next(res, "item"))
		for (inst = xml_path(res, "instancesSet/item"); inst; inst = xml_next(inst, "item"))
			if (xml_list_add(&l, inst, err) < 0)
				goto fail;
	if (xml_text(root, "nextToken", l.next_token, sizeof(l.next_token)) < 0) {
		pp_err_set(err, PP_INTERNAL, "DescribeInstances answer: nextToken is too long");
		goto fail;
	}
	xmlFreeDoc(doc);
	*ret = l;
	return 0;
fail:
	aws_instance_list_free(&l);
	xmlFreeDoc(doc);
	return -1;
}

/* ---- images ---- */

static int xml_image(const xmlNode *img, const char *image_id, struct aws_image_info *ret,
		     struct pp_err *err)
{
	char dev[AWS_STR_MAX], what[AWS_ID_MAX + 32];
	xmlNode *m;

	snprintf(what, sizeof(what), "DescribeImages(%s)", image_id);
	memset(ret, 0, sizeof(*ret));
	if (xml_text_req(img, "rootDeviceName", ret->root_device, sizeof(ret->root_device), what,
			 err) < 0)
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "AMI %s has no root device name (not an EBS-backed image?)", image_id);
	xml_text(img, "bootMode", ret->boot_mode, sizeof(ret->boot_mode));
	for (m = xml_path(img, "blockDeviceMapping/item"); m; m = xml_next(m, "item")) {
		if (xml_text(m, "deviceName", dev, sizeof(dev)) != 0 || strcmp(dev, ret->root_device) != 0)
			continue;
		if (!xml_path(m, "ebs/volumeSize"))
			break;
		return xml_int(m, "ebs/volumeSize", &ret->root_size_gib, what, err);
	}
	return pp_err_set(err, PP_FAILED_PRECONDITION,
			  "AMI %s has no EBS block-device mapping for its root device %s: cannot size "
			  "the root volume (register the AMI with one, or set ROOT_VOLUME_SIZE=0)",
			  image_id, ret->root_device);
}

int aws_xml_describe_images(const char *body, size_t len, const char *image_id,
			    struct aws_image_info *ret, struct pp_err *err)
{
	xmlDocPtr doc = xml_read(body, len, "DescribeImages", err);
	char id[AWS_ID_MAX];
	xmlNode *img;
	int rc = -1;

	if (!doc)
		return -1;
	for (img = xml_path(xmlDocGetRootElement(doc), "imagesSet/item"); img; img = xml_next(img, "item"))
		if (xml_text(img, "imageId", id, sizeof(id)) == 0 && strcmp(id, image_id) == 0)
			break;
	if (!img)
		pp_err_set(err, PP_NOT_FOUND, "AMI %s not found (DescribeImages returned no such image)",
			   image_id);
	else
		rc = xml_image(img, image_id, ret, err);
	xmlFreeDoc(doc);
	return rc;
}

/* ---- instance types ---- */

static int xml_type(const xmlNode *t, struct aws_type_info *ret, struct pp_err *err)
{
	char what[AWS_ID_MAX + 32], feat[64];
	xmlNode *f;

	memset(ret, 0, sizeof(*ret));
	if (xml_text_req(t, "instanceType", ret->name, sizeof(ret->name), "DescribeInstanceTypes",
			 err) < 0)
		return -1;
	snprintf(what, sizeof(what), "DescribeInstanceTypes(%s)", ret->name);
	if (xml_int(t, "vCpuInfo/defaultVCpus", &ret->vcpus, what, err) < 0 ||
	    xml_int(t, "memoryInfo/sizeInMiB", &ret->memory_mib, what, err) < 0)
		return -1;
	for (xmlNode *g = xml_path(t, "gpuInfo/gpus/item"); g; g = xml_next(g, "item")) {
		int64_t count;

		if (xml_int(g, "count", &count, what, err) < 0)
			return -1;
		if (count > INT32_MAX || ret->gpus > INT32_MAX)
			return pp_err_set(err, PP_INTERNAL, "%s answer: GPU count out of range", what);
		ret->gpus += count;
	}
	f = xml_path(t, "processorInfo/supportedFeatures");
	ret->features_known = xml_path(t, "processorInfo") != NULL;
	for (f = f ? xml_child(f, "item") : NULL; f; f = xml_next(f, "item"))
		if (xml_text(f, "", feat, sizeof(feat)) == 0 && strcmp(feat, "amd-sev-snp") == 0)
			ret->sev_snp = true;
	return 0;
}

int aws_xml_describe_instance_types(const char *body, size_t len, struct aws_type_info *ret,
				    size_t max, size_t *ret_n, struct pp_err *err)
{
	xmlDocPtr doc = xml_read(body, len, "DescribeInstanceTypes", err);
	xmlNode *t;
	size_t n = 0;

	if (!doc)
		return -1;
	for (t = xml_path(xmlDocGetRootElement(doc), "instanceTypeSet/item"); t; t = xml_next(t, "item")) {
		if (n == max) {
			xmlFreeDoc(doc);
			return pp_err_set(err, PP_INTERNAL,
					  "DescribeInstanceTypes answer has more than %zu types", max);
		}
		if (xml_type(t, &ret[n], err) < 0) {
			xmlFreeDoc(doc);
			return -1;
		}
		n++;
	}
	xmlFreeDoc(doc);
	*ret_n = n;
	return 0;
}

/* ---- addresses ---- */

static void xml_address(const xmlNode *a, struct aws_address_info *ret)
{
	char key[AWS_TAG_KEY_MAX + 1];

	memset(ret, 0, sizeof(*ret));
	xml_text(a, "publicIp", ret->public_ip, sizeof(ret->public_ip));
	xml_text(a, "allocationId", ret->allocation_id, sizeof(ret->allocation_id));
	xml_text(a, "associationId", ret->association_id, sizeof(ret->association_id));
	for (xmlNode *it = xml_path(a, "tagSet/item"); it; it = xml_next(it, "item")) {
		if (xml_text(it, "key", key, sizeof(key)) != 0)
			continue;
		if (strcmp(key, "Name") == 0)
			xml_text(it, "value", ret->name_tag, sizeof(ret->name_tag));
		else if (strcmp(key, AWS_OWNER_TAG) == 0)
			xml_text(it, "value", ret->owner_tag, sizeof(ret->owner_tag));
	}
}

int aws_xml_describe_addresses(const char *body, size_t len, struct aws_address_info *ret,
			       size_t max, size_t *ret_n, struct pp_err *err)
{
	xmlDocPtr doc = xml_read(body, len, "DescribeAddresses", err);
	xmlNode *root, *a;
	size_t n = 0;

	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!xml_child(root, "addressesSet")) {
		xmlFreeDoc(doc);
		return pp_err_set(err, PP_INTERNAL, "DescribeAddresses answer has no addressesSet");
	}
	for (a = xml_path(root, "addressesSet/item"); a && n < max; a = xml_next(a, "item"))
		xml_address(a, &ret[n++]);
	xmlFreeDoc(doc);
	*ret_n = n;
	return 0;
}

/* ---- STS ---- */

int aws_xml_sts_credentials(const char *body, size_t len, struct aws_creds *ret,
			    struct pp_err *err)
{
	xmlDocPtr doc = xml_read(body, len, "AssumeRoleWithWebIdentity", err);
	struct aws_creds c;
	char when[64];
	xmlNode *cr;
	const char *what = "AssumeRoleWithWebIdentity";
	int rc = -1;

	if (!doc)
		return -1;
	memset(&c, 0, sizeof(c));
	cr = xml_path(xmlDocGetRootElement(doc), "AssumeRoleWithWebIdentityResult/Credentials");
	if (!cr) {
		pp_err_set(err, PP_INTERNAL, "%s answer has no AssumeRoleWithWebIdentityResult/Credentials",
			   what);
		goto out;
	}
	if (xml_text_req(cr, "AccessKeyId", c.akid, sizeof(c.akid), what, err) < 0 ||
	    xml_text_req(cr, "SecretAccessKey", c.secret, sizeof(c.secret), what, err) < 0 ||
	    xml_text_req(cr, "SessionToken", c.token, sizeof(c.token), what, err) < 0 ||
	    xml_text_req(cr, "Expiration", when, sizeof(when), what, err) < 0)
		goto out;
	if (aws_parse_iso8601(when, &c.expires) < 0) {
		pp_err_set(err, PP_INTERNAL, "%s answer: Expiration \"%.40s\" is not a time", what, when);
		goto out;
	}
	*ret = c;
	rc = 0;
out:
	aws_creds_wipe(&c);
	xmlFreeDoc(doc);
	return rc;
}

/* ---- time ---- */

static int iso_num(const char *s, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return 0;
}

int aws_parse_iso8601(const char *s, int64_t *ret)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, off = 0, oh, om;
	const char *p;
	time_t t;

	if (strlen(s) < 19 || iso_num(s, 4, &y) < 0 || s[4] != '-' || iso_num(s + 5, 2, &mo) < 0 ||
	    s[7] != '-' || iso_num(s + 8, 2, &d) < 0 || (s[10] != 'T' && s[10] != 't') ||
	    iso_num(s + 11, 2, &h) < 0 || s[13] != ':' || iso_num(s + 14, 2, &mi) < 0 ||
	    s[16] != ':' || iso_num(s + 17, 2, &sec) < 0)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	p = s + 19;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && iso_num(p + 1, 2, &oh) == 0 && p[3] == ':' &&
		   iso_num(p + 4, 2, &om) == 0) {
		off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*ret = (int64_t)t - off;
	return 0;
}
