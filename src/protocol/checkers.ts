/**
 * TypeBox checkers compiled on first use of each frame type, not at import:
 * compiling every frame schema up front was start-up time (issue #16) spent on
 * frame types a gateway may never see. After the first frame of a type, a check
 * is one map lookup away from the compiled function.
 */
import type { TSchema } from "@sinclair/typebox";
import { type TypeCheck, TypeCompiler } from "@sinclair/typebox/compiler";

export function lazyCheckers<K extends string>(schemas: Readonly<Record<K, TSchema>>): (type: K) => TypeCheck<TSchema> {
  const compiled = new Map<K, TypeCheck<TSchema>>();
  return (type) => {
    let check = compiled.get(type);
    if (check === undefined) {
      check = TypeCompiler.Compile(schemas[type]);
      compiled.set(type, check);
    }
    return check;
  };
}
