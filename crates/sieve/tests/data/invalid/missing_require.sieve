fileinto "A";
