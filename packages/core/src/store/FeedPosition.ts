/**
 * A position in the change feed: the transaction that made a change (`xid`, PostgreSQL's 64-bit
 * xid8) and the change's `seq` (records_change_seq), both decimal strings. Feed order is
 * (xid, seq). See ChangeFeed.ts for why.
 *
 * As a cursor it is written `<xid>.<seq>`. A bare `<seq>` (the cursors handed out before the feed
 * was commit-ordered) reads as `0.<seq>`: the rows of those days carry xid 0 and keep their order,
 * so an old cursor resumes where it was and then reads every change made since.
 */
export interface FeedPosition {
  readonly xid: string;
  readonly seq: string;
}

/** Before every change. */
export const feedStart: FeedPosition = { xid: "0", seq: "0" };

/** xid8 is unsigned 64-bit; change_seq is a bigint (signed 64-bit). */
const MAX_XID = 2n ** 64n - 1n;
const MAX_SEQ = 2n ** 63n - 1n;

const CURSOR = /^(?:(\d{1,20})\.)?(\d{1,19})$/;

/** The cursor text of a position. */
export const encodeFeedPosition = (p: FeedPosition): string => `${p.xid}.${p.seq}`;

/** The position a cursor names, or undefined when the text is not a cursor of the feed. */
export const decodeFeedPosition = (cursor: string): FeedPosition | undefined => {
  const match = CURSOR.exec(cursor);
  if (match === null) return undefined;
  const xid = BigInt(match[1] ?? "0");
  const seq = BigInt(match[2]!);
  if (xid > MAX_XID || seq > MAX_SEQ) return undefined;
  return { xid: String(xid), seq: String(seq) };
};
