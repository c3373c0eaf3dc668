// specbuild's own version, as tools name themselves to servers (REAPI
// RequestMetadata.tool_details). Kept equal to package.json's by a test.
export const SPECBUILD_VERSION = '0.1.0';
