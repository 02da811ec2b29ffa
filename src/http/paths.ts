/** URL paths outside /v2/ that more than the router builds: signed blob URLs point at BLOB_DATA_PATH. */
export const BLOB_DATA_PATH = "/blob-data/";
