DROP TABLE domain_policies;
