'use strict';

/*
 * Shared redelivery dedup for serverless.aws.yml (docs/dedup.md), read from the deployer's environment:
 *
 *   FS2SPLIT_DEDUP_STORE=dynamodb   declares the table and lets the function use it (the setting itself is
 *                                   forwarded to the function by deploy/settings.js, like every FS2SPLIT_*)
 *   FS2SPLIT_DEDUP_TABLE            the table's name (default fs2split-dedup, the function's default too)
 *
 * Any other store (memory, the default) adds nothing. The function never creates the table.
 */

const DEFAULT_TABLE = 'fs2split-dedup';
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;

function value(env, name) {
  return (env[name] || '').trim();
}

function tableName(env) {
  const name = value(env, 'FS2SPLIT_DEDUP_TABLE') || DEFAULT_TABLE;
  if (!TABLE_NAME.test(name)) {
    throw new Error(`FS2SPLIT_DEDUP_TABLE must be 3-255 letters, digits, underscores, dots or hyphens, got "${name}"`);
  }
  return name;
}

/** CloudFormation resources: the table (on-demand, key id, TTL on expires_at) and the role's access to it. */
function awsResources(env = process.env) {
  if (value(env, 'FS2SPLIT_DEDUP_STORE').toLowerCase() !== 'dynamodb') {
    return { Resources: {} };
  }
  return {
    Resources: {
      DedupTable: {
        Type: 'AWS::DynamoDB::Table',
        // Only keys that expire within the dedup window: nothing to keep when the stack goes.
        DeletionPolicy: 'Delete',
        UpdateReplacePolicy: 'Delete',
        Properties: {
          TableName: tableName(env),
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
          // DynamoDB deletes expired records lazily; the function checks expiry itself.
          TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: false },
        },
      },
      DedupTableAccess: {
        Type: 'AWS::IAM::Policy',
        Properties: {
          PolicyName: 'fs2split-dedup',
          Roles: [{ Ref: 'IamRoleLambdaExecution' }],
          PolicyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Effect: 'Allow',
                Action: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem'],
                Resource: [{ 'Fn::GetAtt': ['DedupTable', 'Arn'] }],
              },
            ],
          },
        },
      },
    },
  };
}

module.exports = {
  // serverless calls a variable's function with its own resolver object: read the real environment.
  awsResources: () => awsResources(process.env),
  // For tests and other tools: the same over any environment.
  awsResourcesFrom: awsResources,
};
