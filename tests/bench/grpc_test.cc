#include "grpc.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ringside::bench {
namespace {

// The 5-byte prefix as numbers: flag, then the big-endian length.
std::vector<int> prefix(const std::string& frame) {
  std::vector<int> out;
  for (size_t i = 0; i < 5 && i < frame.size(); ++i) out.push_back(static_cast<uint8_t>(frame[i]));
  return out;
}

TEST(GrpcFrame, PrefixIsUncompressedFlagAndBigEndianLength) {
  EXPECT_EQ(prefix(grpc_frame(0)), (std::vector<int>{0, 0, 0, 0, 0}));
  EXPECT_EQ(grpc_frame(0).size(), 5u);
  EXPECT_EQ(prefix(grpc_frame(100)), (std::vector<int>{0, 0, 0, 0, 100}));
  EXPECT_EQ(prefix(grpc_frame(70000)), (std::vector<int>{0, 0, 1, 0x11, 0x70}));
  const std::string largest = grpc_frame(kMaxGrpcMessage);
  EXPECT_EQ(prefix(largest), (std::vector<int>{0, 1, 0, 0, 0}));
  EXPECT_EQ(largest.size(), kMaxGrpcMessage + 5);
}

TEST(GrpcFrame, PayloadHasTheAskedSize) {
  const std::string frame = grpc_frame(3);
  ASSERT_EQ(frame.size(), 8u);
  EXPECT_EQ(frame.substr(5), "xxx");
}

int slot_of(std::vector<http::Field> fields) { return grpc_status_slot(fields); }

TEST(GrpcStatus, SlotIsTheCodeOrMissing) {
  EXPECT_EQ(slot_of({{"grpc-status", "0"}}), 0);
  EXPECT_EQ(slot_of({{"grpc-message", "x"}, {"grpc-status", "14"}}), 14);
  EXPECT_EQ(slot_of({{"grpc-status", "16"}}), 16);
  EXPECT_EQ(slot_of({}), kGrpcStatusMissing);
  EXPECT_EQ(slot_of({{"content-type", "application/grpc"}}), kGrpcStatusMissing);
  // Not a gRPC code: counted apart, never as OK.
  for (const char* bad : {"17", "99", "", "-1", "1a", " 0", "000"}) {
    EXPECT_EQ(slot_of({{"grpc-status", bad}}), kGrpcStatusMissing) << "'" << bad << "'";
  }
  // The first grpc-status wins.
  EXPECT_EQ(slot_of({{"grpc-status", "5"}, {"grpc-status", "0"}}), 5);
}

TEST(GrpcStatus, Names) {
  EXPECT_EQ(grpc_status_name(0), "OK");
  EXPECT_EQ(grpc_status_name(3), "INVALID_ARGUMENT");
  EXPECT_EQ(grpc_status_name(14), "UNAVAILABLE");
  EXPECT_EQ(grpc_status_name(16), "UNAUTHENTICATED");
  EXPECT_EQ(grpc_status_name(kGrpcStatusMissing), "missing");
  EXPECT_EQ(grpc_status_name(-1), "missing");
}

TEST(GrpcPath, PackageServiceMethod) {
  EXPECT_TRUE(valid_grpc_path("/helloworld.Greeter/SayHello"));
  EXPECT_TRUE(valid_grpc_path("/Svc/M"));
  for (const char* bad :
       {"", "/", "Svc/M", "/Svc", "/Svc/", "//M", "/a/b/c", "/S vc/M", "/S/M\n"}) {
    EXPECT_FALSE(valid_grpc_path(bad)) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace ringside::bench
