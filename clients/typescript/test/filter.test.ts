import { describe, expect, it } from "vitest";

import { FilterError, ID_KEY, translate } from "../src/filter.js";

describe("Mastra filters as ctxstore filters", () => {
  it("makes every field a metadata path, nested objects dotted paths", () => {
    expect(translate({ thread_id: "t1", id: 5, content: "x" })).toEqual({
      "$.thread_id": "t1",
      "$.id": 5,
      "$.content": "x",
    });
    expect(translate({ specs: { screen: "OLED", size: { $gt: 5 } } })).toEqual({
      "$.specs.screen": "OLED",
      "$.specs.size": { $gt: 5 },
    });
    expect(translate({ tags: ["a", "b"] })).toEqual({ "$.tags": { $in: ["a", "b"] } });
    expect(translate(null)).toEqual({});
    expect(translate(undefined)).toEqual({});
  });

  it("keeps logic and array operators, normalising values", () => {
    const day = new Date("2026-01-02T03:04:05.000Z");
    expect(translate({ $and: [{ a: { $gte: day } }, { $or: [{ b: -0 }, { c: { $in: "x" } }] }] })).toEqual({
      $and: [{ "$.a": { $gte: "2026-01-02T03:04:05.000Z" } }, { $or: [{ "$.b": 0 }, { "$.c": { $in: ["x"] } }] }],
    });
    expect(translate({ $nor: [{ a: 1 }], tags: { $all: ["x"], $size: 2 } })).toEqual({
      $nor: [{ "$.a": 1 }],
      "$.tags": { $all: ["x"], $size: 2 },
    });
    expect(translate({ items: { $elemMatch: { sku: "s1", qty: { $gt: 2 } } } })).toEqual({
      "$.items": { $elemMatch: { "$.sku": "s1", "$.qty": { $gt: 2 } } },
    });
    expect(translate({ scores: { $elemMatch: { $gte: 80, $lt: 90 } } })).toEqual({
      "$.scores": { $elemMatch: { $gte: 80, $lt: 90 } },
    });
    expect(translate({ n: { $not: { $gt: 5 } } })).toEqual({ "$.n": { $not: { $gt: 5 } } });
    expect(translate({ $not: { a: 1 } })).toEqual({ $not: { "$.a": 1 } });
  });

  it("maps Mastra's Postgres $contains and regexes", () => {
    expect(translate({ name: { $contains: "50%_off" } })).toEqual({ "$.name": { $ilike: "%50\\%\\_off%" } });
    expect(translate({ tags: { $contains: ["a"] } })).toEqual({ "$.tags": { $all: ["a"] } });
    expect(translate({ name: { $regex: "^a", $options: "i" } })).toEqual({ "$.name": { $regex: "^a", $options: "i" } });
    expect(translate({ name: /^a.c$/i })).toEqual({ "$.name": { $regex: "^a.c$", $options: "i" } });
    expect(translate({ name: { $regex: /x/ } })).toEqual({ "$.name": { $regex: "x" } });
  });

  it("gives empty lists Mastra's meaning", () => {
    expect(translate({ $and: [] })).toEqual({});
    expect(translate({ $nor: [] })).toEqual({});
    expect(translate({ $or: [] })).toEqual({ $and: [{ [`$.${ID_KEY}`]: { $in: [] } }] });
  });

  it("refuses what it cannot mean, before any SQL", () => {
    for (const bad of [
      { $eq: 1 },
      { a: { $unknown: 1 } },
      { a: { $options: "i" } },
      { a: { $regex: "x", $options: "g" } },
      { a: { $regex: /x/m } },
      { a: { $exists: "yes" } },
      { a: { $size: -1 } },
      { a: { $elemMatch: {} } },
      { a: { $not: 5 } },
      { a: { $gt: 1, plain: 2 } },
      { $and: { a: 1 } },
      { $not: {} },
      { a: Number.NaN },
      { [ID_KEY]: "x" },
      "not an object",
    ]) {
      expect(() => translate(bad), JSON.stringify(bad)).toThrow(FilterError);
    }
  });
});
