// Schemas shared by several routes.
import { z } from "zod";

export const IdParams = z.object({ id: z.uuid() });

/** Trimmed single-line text. */
export const name = (max: number) =>
  z
    .string()
    .trim()
    .min(1, "must not be empty")
    .max(max, `must be at most ${max} characters`)
    .regex(/^[^\p{Cc}]*$/u, "must not contain control characters");

export const Timestamp = z.iso.datetime({ offset: true });

export const Page = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z.string().max(200).optional(),
});

export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({
    items: z.array(item),
    /** Pass as ?cursor= to get the next page; null on the last page. */
    nextCursor: z.string().nullable(),
  });
