/** URL paths outside /v2/ (routes/router.ts); signed blob URLs point at BLOB_DATA_PATH, errors on TOKEN_PATH are OAuth's. */
export const TOKEN_PATH = "/token";
export const JWKS_PATH = "/.well-known/jwks.json";
export const BLOB_DATA_PATH = "/blob-data/";
