// Validates every object of a multi-document YAML file (kubectl kustomize's output) against the
// Kubernetes API schemas, with unknown fields rejected, offline:
//  - kubernetes-models: the JSON schemas generated from Kubernetes' OpenAPI spec (types,
//    required fields, enums) through each kind's validate();
//  - @kubernetes/client-node: each API type's complete list of fields (attributeTypeMap), walked
//    recursively: any field not in it is an error (what `kubectl --validate=strict` reports).
// Usage: node validate.js FILE.yaml  -> prints one line per object; exit 1 on any error.
"use strict";
const fs = require("fs");
const k8s = require("@kubernetes/client-node");

// "apps/v1" + "StatefulSet" -> the kubernetes-models class and the client-node type name.
function modelOf(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const path = group === "" ? `kubernetes-models/${version}/${kind}`
                            : `kubernetes-models/${group}/${version}/${kind}`;
  const Model = require(path)[kind];
  const typeName = version.charAt(0).toUpperCase() + version.slice(1) + kind;
  return { Model, typeName };
}

// Unknown fields of `value` as type `type` (client-node's spelling), appended to `errors`.
function checkFields(value, type, path, errors) {
  if (value === null || value === undefined) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => checkFields(v, array[1], `${path}[${i}]`, errors));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    for (const [k, v] of Object.entries(value)) checkFields(v, map[1], `${path}.${k}`, errors);
    return;
  }
  const model = k8s[type];
  if (typeof value !== "object" || !model || typeof model.getAttributeTypeMap !== "function") return;
  const known = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [field, v] of Object.entries(value)) {
    if (!known.has(field)) {
      errors.push(`${path}.${field}: unknown field (not in ${type})`);
      continue;
    }
    checkFields(v, known.get(field), `${path}.${field}`, errors);
  }
}

function main() {
  const text = fs.readFileSync(process.argv[2], "utf8");
  const objects = k8s.loadAllYaml(text).filter((o) => o);
  let failed = 0;
  for (const object of objects) {
    const name = `${object.kind}/${object.metadata && object.metadata.name}`;
    const errors = [];
    try {
      const { Model, typeName } = modelOf(object.apiVersion, object.kind);
      try {
        new Model(object).validate();
      } catch (e) {
        errors.push(`schema: ${e.message}`);
      }
      if (!k8s[typeName]) errors.push(`no field list for ${typeName}`);
      checkFields(object, typeName, "", errors);
    } catch (e) {
      errors.push(`unknown kind ${object.apiVersion} ${object.kind}: ${e.message}`);
    }
    if (errors.length === 0) {
      console.log(`ok ${name}`);
    } else {
      failed++;
      for (const error of errors) console.log(`FAIL ${name}: ${error}`);
    }
  }
  console.log(`${objects.length - failed} valid, ${failed} invalid`);
  process.exit(failed === 0 && objects.length > 0 ? 0 : 1);
}

main();
