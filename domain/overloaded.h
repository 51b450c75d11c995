// Overloaded: an overload set built from lambdas, for std::visit over a closed set of
// alternatives (commands, events):
//
//   std::visit(Overloaded{[](const CreateTaskCommand& c) { ... },
//                         [](const LogContactCommand& c) { ... }},
//              command);
//
// A new alternative without a matching handler is a compile error, never a run-time fall-through.
// Give each handler the exact type it handles; a catch-all (`auto`) handler would defeat that.
// Header-only; no state.
#pragma once

namespace outreach::domain {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace outreach::domain
