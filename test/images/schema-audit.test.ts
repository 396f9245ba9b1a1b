/**
 * Our schemas against CRIU's: test/images/criu-fields.json lists, for every
 * message in CRIU's images/*.proto (the release it names), each field's
 * number, rule, type, name and packing (made by scripts/criu-proto-fields.mjs
 * from a CRIU source tree). Every message and every field there must be in
 * src/images/schema with the same facts, so no image CRIU writes loses a
 * field through criu-ts. Fields we have beyond the list are allowed (other
 * releases), numbers CRIU uses for something else are not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lookupMessage } from '../../src/images/schema/index.js';
import type { FieldDesc } from '../../src/images/schema/index.js';
import { repoRoot } from './vectors.js';

interface FieldList {
  release: string;
  messages: Record<string, Record<string, string>>;
}

const LIST = JSON.parse(readFileSync(join(repoRoot(), 'test', 'images', 'criu-fields.json'), 'utf8')) as FieldList;

/** Messages in CRIU's .proto files that never appear in an image, and why. */
const NOT_IMAGE_MESSAGES: Readonly<Record<string, string>> = {
  CRIU_Opts: "the (criu) field options of CRIU's .proto files: FieldDesc.opts here",
};

const SCALARS = new Set([
  'double', 'float', 'int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64',
  'fixed32', 'fixed64', 'sfixed32', 'sfixed64', 'bool', 'string', 'bytes',
]);

/** "required uint32 uid packed" as our descriptor would say it. */
function describe(fd: FieldDesc): string {
  const type = fd.type === 'message' || fd.type === 'enum' ? (fd.ref ?? '?') : fd.type;
  return `${fd.rule} ${type} ${fd.name}${fd.packed === true ? ' packed' : ''}`;
}

/** Same facts? A nested enum is "parent.name" here and "name" in the .proto. */
function sameField(ours: FieldDesc, theirs: string): boolean {
  const [rule, type, name, packed] = theirs.split(' ');
  if (ours.rule !== rule || ours.name !== name || (ours.packed === true) !== (packed === 'packed')) return false;
  if (SCALARS.has(type ?? '')) return ours.type === type;
  return (ours.type === 'message' || ours.type === 'enum') && (ours.ref === type || (ours.ref ?? '').endsWith(`.${type ?? ''}`));
}

test(`every message and field of CRIU ${LIST.release}'s images is in our schemas`, () => {
  const gaps: string[] = [];
  for (const [msg, fields] of Object.entries(LIST.messages)) {
    if (NOT_IMAGE_MESSAGES[msg] !== undefined) continue;
    const m = lookupMessage(msg);
    if (m === undefined) {
      gaps.push(`message ${msg} missing (${Object.keys(fields).length} fields)`);
      continue;
    }
    for (const [num, theirs] of Object.entries(fields)) {
      const ours = m.fields.find((x) => x.num === Number(num));
      if (ours === undefined) gaps.push(`${msg} field ${num} missing (CRIU: ${theirs})`);
      else if (!sameField(ours, theirs)) gaps.push(`${msg} field ${num}: ours "${describe(ours)}", CRIU "${theirs}"`);
    }
  }
  assert.deepEqual(gaps, [], `${gaps.length} gaps against CRIU ${LIST.release}:\n${gaps.join('\n')}`);
});

test('the list itself is sane (CRIU messages have fields, numbers are positive)', () => {
  const names = Object.keys(LIST.messages);
  assert.ok(names.length > 150, `only ${names.length} messages listed`);
  for (const [msg, fields] of Object.entries(LIST.messages)) {
    for (const num of Object.keys(fields)) assert.ok(Number(num) > 0, `${msg}: field number ${num}`);
  }
  assert.match(LIST.messages['creds_entry']?.['18'] ?? '', /no_new_privs/);
});
