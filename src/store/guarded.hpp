// Store internals: SQLiteCpp reports errors as exceptions; the store's callers get Results.
#pragma once

#include <exception>
#include <string>

#include "core/result.hpp"

namespace starling::store {

template <typename F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return make_error(std::string("store: ") + e.what());
  }
}

}  // namespace starling::store
