#include "events/event_log.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace starling::events {
namespace {

TEST(Events, RenderFillsNamedFields) {
  EXPECT_EQ(render("{A} and {B}, {C}", {{"A", "x"}, {"B", "y"}}), "x and y, {C}");
}

TEST(Events, CatalogHasTheModelsEvents) {
  for (int id : {12002, 12014, 12016, 12018}) EXPECT_NE(find_event(id), nullptr) << id;
  EXPECT_EQ(find_event(12014)->name, "StartTlsCertificateNotFound");
  EXPECT_EQ(find_event(12014)->level, Level::kWarning);
}

TEST(Events, RepeatsAreSuppressedUntilTheConfigurationChanges) {
  char tmpl[] = "/tmp/starling-events-XXXXXX";
  std::filesystem::path dir = mkdtemp(tmpl);
  auto store = store::Store::create(dir / "s.db");
  ASSERT_TRUE(store);
  EventLog log(store->get());
  auto now = std::chrono::system_clock::now();
  log.clock = [&] { return now; };
  Fields f{{"Connector", "Default mx"}, {"Fqdn", "mail.contoso.test"}};
  EXPECT_TRUE(log.log(kStartTlsCertificateNotFound, "Default mx", f, 1));
  EXPECT_FALSE(log.log(kStartTlsCertificateNotFound, "Default mx", f, 1));
  EXPECT_TRUE(log.log(kStartTlsCertificateNotFound, "Other", f, 1)) << "another object";
  EXPECT_TRUE(log.log(kStartTlsCertificateNotFound, "Default mx", f, 2)) << "config changed";
  now += std::chrono::hours(2);
  EXPECT_TRUE(log.log(kStartTlsCertificateNotFound, "Default mx", f, 2)) << "interval passed";
  auto stored = (*store)->events({.event_id = kStartTlsCertificateNotFound});
  ASSERT_EQ(stored->size(), 4u);
  EXPECT_NE((*stored)[0].data_json.find("\"Fqdn\":\"mail.contoso.test\""), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace starling::events

namespace starling::events {
namespace {

TEST(Events, EveryEventHasADocumentationPage) {
  for (const auto& e : catalog()) {
    auto page = std::filesystem::path(STARLING_DOCS_DIR) / "events" / (std::to_string(e.id) + ".md");
    EXPECT_TRUE(std::filesystem::exists(page)) << "no page for event " << e.id << ": " << page;
  }
}

}  // namespace
}  // namespace starling::events
