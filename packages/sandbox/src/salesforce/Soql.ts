import {
  type SalesforceError,
  type SalesforceObjectType,
  salesforceDateTimeFields,
  salesforceFieldsOf,
  salesforceObjectTypes,
} from "./SalesforceStore.ts";

/*
 * The SOQL the fake understands: a deliberately small subset, the shapes connectors send
 * to replicate an object. Anything else is answered 400 MALFORMED_QUERY, so a connector
 * that drifts from these shapes fails its tests instead of passing against a lenient fake.
 *
 *   SELECT <field>[, <field>...] FROM <Object>
 *     [WHERE <datetime field> (> | >= | < | <= | =) <datetime literal>]
 *     [ORDER BY <field> [ASC | DESC][, <field> [ASC | DESC]...]]
 *     [LIMIT <n>]
 *
 * Keywords, objects and fields are case-insensitive (as in SOQL); datetime literals are
 * unquoted `YYYY-MM-DDThh:mm:ss[.sss](Z | +hh:mm | -hh:mm)`. A quoted datetime is refused as
 * Salesforce refuses it. See
 * https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-dateformats.html
 */

export type SoqlOperator = ">" | ">=" | "<" | "<=" | "=";

export interface SoqlQuery {
  readonly object: SalesforceObjectType;
  /** Canonical field names, in the order selected. */
  readonly fields: ReadonlyArray<string>;
  readonly where?: { readonly field: string; readonly operator: SoqlOperator; readonly value: number };
  readonly orderBy: ReadonlyArray<{ readonly field: string; readonly descending: boolean }>;
  readonly limit?: number;
}

const token = /\s*(>=|<=|,|=|>|<|'(?:[^'\\]|\\.)*'|[A-Za-z_][A-Za-z0-9_]*|\d[0-9T:.+\-Z]*|\S)/y;

const tokenize = (soql: string): Array<string> => {
  const tokens: Array<string> = [];
  token.lastIndex = 0;
  for (let match = token.exec(soql); match !== null; match = token.exec(soql)) tokens.push(match[1]!);
  return tokens;
};

const datetimeLiteral = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

const malformed = (message: string): { readonly error: SalesforceError } => ({
  error: { message, errorCode: "MALFORMED_QUERY" },
});

const noSuchColumn = (name: string, object: string): { readonly error: SalesforceError } => ({
  error: {
    message: `No such column '${name}' on entity '${object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.`,
    errorCode: "INVALID_FIELD",
  },
});

/** Parses one query of the subset above, or says why not in Salesforce's terms. */
export const parseSoql = (soql: string): { readonly query: SoqlQuery } | { readonly error: SalesforceError } => {
  const tokens = tokenize(soql);
  let at = 0;
  const peek = () => tokens[at];
  const keyword = (word: string) => peek()?.toUpperCase() === word;
  const unexpected = () => malformed(`unexpected token: '${peek() ?? "<EOF>"}'`);

  if (!keyword("SELECT")) return unexpected();
  at++;
  const selected: Array<string> = [];
  for (;;) {
    const name = peek();
    if (name === undefined || !/^[A-Za-z_]\w*$/.test(name)) return unexpected();
    selected.push(name);
    at++;
    if (peek() !== ",") break;
    at++;
  }
  if (!keyword("FROM")) return unexpected();
  at++;
  const objectName = peek();
  if (objectName === undefined) return unexpected();
  const object = salesforceObjectTypes.find((t) => t.toLowerCase() === objectName.toLowerCase());
  if (object === undefined) {
    return {
      error: {
        message: `sObject type '${objectName}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.`,
        errorCode: "INVALID_TYPE",
      },
    };
  }
  at++;
  const known = salesforceFieldsOf(object);
  const canonical = (name: string) => known.find((f) => f.toLowerCase() === name.toLowerCase());
  const fields: Array<string> = [];
  for (const name of selected) {
    const field = canonical(name);
    if (field === undefined) return noSuchColumn(name, object);
    if (!fields.includes(field)) fields.push(field);
  }

  let where: SoqlQuery["where"];
  if (keyword("WHERE")) {
    at++;
    const name = peek() ?? "";
    const field = canonical(name);
    if (field === undefined) return /^[A-Za-z_]\w*$/.test(name) ? noSuchColumn(name, object) : unexpected();
    if (!(salesforceDateTimeFields as ReadonlyArray<string>).includes(field)) {
      return malformed(`the fake supports WHERE on datetime fields only, not '${field}'`);
    }
    at++;
    const operator = peek();
    if (operator !== ">" && operator !== ">=" && operator !== "<" && operator !== "<=" && operator !== "=") {
      return unexpected();
    }
    at++;
    const literal = peek() ?? "";
    if (literal.startsWith("'")) {
      return {
        error: {
          message: `value of filter criterion for field '${field}' must be of type dateTime and should not be enclosed in quotes`,
          errorCode: "INVALID_FIELD",
        },
      };
    }
    if (!datetimeLiteral.test(literal))
      return malformed(`line 1:${soql.indexOf(literal)} no viable alternative at character '${literal}'`);
    at++;
    where = { field, operator, value: Date.parse(literal) };
  }

  const orderBy: Array<{ field: string; descending: boolean }> = [];
  if (keyword("ORDER")) {
    at++;
    if (!keyword("BY")) return unexpected();
    at++;
    for (;;) {
      const name = peek() ?? "";
      const field = canonical(name);
      if (field === undefined) return /^[A-Za-z_]\w*$/.test(name) ? noSuchColumn(name, object) : unexpected();
      at++;
      let descending = false;
      if (keyword("ASC")) at++;
      else if (keyword("DESC")) {
        descending = true;
        at++;
      }
      orderBy.push({ field, descending });
      if (peek() !== ",") break;
      at++;
    }
  }

  let limit: number | undefined;
  if (keyword("LIMIT")) {
    at++;
    const n = Number(peek());
    if (!Number.isInteger(n) || n < 0) return unexpected();
    limit = n;
    at++;
  }
  if (at !== tokens.length) return unexpected();
  return {
    query: {
      object,
      fields,
      orderBy,
      ...(where !== undefined ? { where } : {}),
      ...(limit !== undefined ? { limit } : {}),
    },
  };
};
