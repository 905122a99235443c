require ["vacation-seconds"];
vacation :seconds 1 "x";
