// Schemas shared by several routes.
import { z } from "zod";

export const IdParams = z.object({ id: z.uuid() });

/**
 * Something besides whitespace, and no control character (Unicode category Cc: U+0000-U+001F and
 * U+007F-U+009F). Written without flags or \p{...} so that the document's `pattern` means the
 * same in every regular expression dialect a client may use.
 */
// eslint-disable-next-line no-control-regex -- control characters are what it refuses
export const SINGLE_LINE = /^(?=[\s\S]*\S)[^\x00-\x1F\x7F-\x9F]*$/;

/** Trimmed single-line text. */
export const name = (max: number) =>
  z
    .string()
    .trim()
    .min(1, "must not be empty")
    .max(max, `must be at most ${max} characters`)
    .regex(SINGLE_LINE, "must not contain control characters");

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
