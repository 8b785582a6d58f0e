// Boost.JSON's compiled part, built into Ferry once (the build links Boost::headers only: no libboost_json).
// Any other file that reads JSON includes <boost/json/...> headers and must not include src.hpp again, or the
// library's symbols would be defined twice.
#include <boost/json/src.hpp>
