// Program types as the server has them (GET /api/plugins: built-ins and plugins alike), never a
// list of the console's own: a plugin's new type shows up in the upload form by itself.

// The types a CSV is uploaded as (the national ZIP has its own choice), `preferred` first.
export function csvTypes(plugins, preferred = "event") {
  const types = (plugins.program_types || []).filter((t) => t.route === "new_programs");
  return [...types.filter((t) => t.name === preferred), ...types.filter((t) => t.name !== preferred)];
}

// The spec kinds the types validate with (what POST /api/spec/{kind} accepts), `preferred` first.
export function specKinds(plugins, preferred = "event") {
  const kinds = [...new Set((plugins.program_types || []).map((t) => t.spec_kind))];
  return [...kinds.filter((k) => k === preferred), ...kinds.filter((k) => k !== preferred)];
}

// The spec kind of one type (a plugin's type may validate with another kind's specs).
export function specKindOf(types, name) {
  const type = types.find((t) => t.name === name);
  return type ? type.spec_kind : name;
}
