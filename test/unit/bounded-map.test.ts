import { describe, expect, it } from "vitest";
import { BoundedMap } from "../../src/storage/bounded-map";

describe("BoundedMap", () => {
  it("evicts the oldest entry when a new key would pass the bound", () => {
    const map = new BoundedMap<string, number>(2);
    map.set("a", 1).set("b", 2).set("c", 3);
    expect([...map.keys()]).toEqual(["b", "c"]);
  });
  it("updating a present key evicts nothing; delete and set again makes it the newest", () => {
    const map = new BoundedMap<string, number>(2);
    map.set("a", 1).set("b", 2).set("a", 10);
    expect([...map.entries()]).toEqual([["a", 10], ["b", 2]]);
    map.delete("a");
    map.set("a", 11).set("c", 3);
    expect([...map.keys()]).toEqual(["a", "c"]);
  });
});
