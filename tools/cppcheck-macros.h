/* Macros from httpd's headers that cppcheck must know to parse mod_ecom
 * without reading those headers (which it cannot configure). */
#define APLOGNO(n) "AH" #n ": "
#define APLOG_MARK __FILE__, __LINE__, -1
#define APLOG_USE_MODULE(foo)
#define AP_DECLARE_MODULE(foo) module foo##_module
#define APR_OPTIONAL_FN_TYPE(name) int (name##_t)
#define STANDARD20_MODULE_STUFF 0, 0, 0, 0, 0, 0
