#include <algorithm>
#include <set>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/time.h"
#include "fruitpipe/dataset/layout.h"
#include "fruitpipe/pipeline/stages.h"

namespace fruitpipe::pipeline {
namespace {

using dataset::DatasetPlan;
using dataset::Rejection;
using dataset::SourceImage;
using nlohmann::json;

PlanOutcome MakePlan(const RunOptions& o, storage::Storage& source, storage::Storage& out, const json& model_identity) {
  PlanOutcome p;
  const auto existing = dataset::LoadPlan(out);
  std::vector<SourceImage> images = dataset::ListSource(source, &p.list_rejects);
  if (!existing && images.empty()) {
    // A newcomer's first mistake: a wrong path, or photos not in <Label>/ folders.
    throw InvalidArgumentError(
        source.Uri("") + (p.list_rejects.empty() ? ": holds no image files (expected <Label>/ folders of photos)"
                                                 : ": holds no image files in <Label>/ folders (" +
                                                       std::to_string(p.list_rejects.size()) + " left out: " +
                                                       p.list_rejects.front().reason + ")"));
  }
  std::erase_if(images, [&](const SourceImage& img) {
    std::optional<std::string> reason;
    if (o.admit_filter) {
      reason = o.admit_filter(img);
    } else if (img.subject_id) {
      reason = "no consent ledger given";
    }
    if (reason) p.list_rejects.push_back({source.Uri(img.key), *reason});
    return reason.has_value();
  });
  if (o.limit > 0 && static_cast<std::int64_t>(images.size()) > o.limit) images.resize(static_cast<std::size_t>(o.limit));

  if (!existing) {
    p.plan.source = source.Uri("");
    p.plan.shard_size = o.shard_size;
    p.plan.model = model_identity;
    p.plan.shards = dataset::CutShards(images, o.shard_size, 0, dataset::RunId(p.plan.source, images, o.shard_size));
    return p;
  }
  p.plan = *existing;
  if (!o.resume && !o.incremental) {
    const bool done = out.Exists(dataset::kSuccessKey);
    throw InvalidArgumentError(out.Uri("") + ": already holds a " + (done ? "finished" : "unfinished") +
                               " run; pass --resume to finish it, --incremental to add new images, "
                               "or choose an empty output folder");
  }
  if (p.plan.source != source.Uri("")) {
    throw InvalidArgumentError(out.Uri("") + ": holds a run of " + p.plan.source + ", not " + source.Uri(""));
  }
  if (p.plan.model != model_identity) {
    throw InvalidArgumentError(out.Uri("") + ": was built with model " + p.plan.model.dump() +
                               "; this run uses " + model_identity.dump() + " (features would not be comparable)");
  }
  if (o.incremental) {
    std::set<std::string> known;
    for (const auto& s : p.plan.shards) for (const auto& img : s.images) known.insert(img.key);
    std::vector<SourceImage> fresh;
    for (auto& img : images) if (!known.count(img.key)) fresh.push_back(std::move(img));
    if (!fresh.empty()) {
      int next = 0;
      for (const auto& s : p.plan.shards) next = std::max(next, s.index + 1);
      const std::string run_id = dataset::RunId(source.Uri(""), fresh, p.plan.shard_size);
      for (auto& s : dataset::CutShards(fresh, p.plan.shard_size, next, run_id)) p.plan.shards.push_back(std::move(s));
    }
  }
  return p;
}

}  // namespace

PlanOutcome PlanStage(const RunOptions& o, storage::Storage& source, storage::Storage& out,
                      const json& model_identity, cluster::Coordinator& coord) {
  const double start = WallSeconds();
  const std::string envelope = coord.Decide([&] {
    PlanOutcome p = MakePlan(o, source, out, model_identity);
    // The dataset is about to change: readers must not take it as complete meanwhile.
    out.Delete(dataset::kSuccessKey);
    dataset::StorePlan(out, p.plan);
    json rejects = json::array();
    for (const auto& r : p.list_rejects) rejects.push_back({r.path, r.reason});
    return json{{"plan", p.plan.ToJson()}, {"list_rejects", rejects}}.dump(
        -1, ' ', false, json::error_handler_t::replace);
  });
  const json j = json::parse(envelope);
  PlanOutcome p;
  p.plan = DatasetPlan::FromJson(j.at("plan").get<std::string>());
  for (const auto& r : j.at("list_rejects")) p.list_rejects.push_back({r.at(0), r.at(1)});
  p.seconds = WallSeconds() - start;
  return p;
}

}  // namespace fruitpipe::pipeline
