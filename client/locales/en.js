// English: every key the page uses. Other catalogs must have exactly these keys (a test checks).
export default {
};
