"""`--setup-bucket`: the bucket, its anonymous read-only policy on the prefix, CORS for STAC Browser
and COG range reads, and a lifecycle rule for interrupted multipart uploads."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stac_mmtp.release.publish.stores import S3Store

log = logging.getLogger(__name__)


def public_read_policy(bucket: str, prefix: str = "") -> dict[str, Any]:
    """Anonymous GetObject on the published prefix only: no listing, no writes, no ACL reads."""
    resource = f"arn:aws:s3:::{bucket}/{prefix.strip('/')}/*" if prefix.strip("/") else f"arn:aws:s3:::{bucket}/*"
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "PublicReadObjects", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": resource}],
    }


CORS_RULES: dict[str, Any] = {
    "CORSRules": [{
        "AllowedMethods": ["GET", "HEAD"],
        "AllowedOrigins": ["*"],
        "AllowedHeaders": ["Range", "If-None-Match", "If-Modified-Since"],  # COG range reads, revalidation
        "ExposeHeaders": ["Content-Range", "Content-Length", "ETag", "Accept-Ranges", "Last-Modified"],
        "MaxAgeSeconds": 3600,
    }]
}


def setup_bucket(store: S3Store) -> list[str]:
    """Create the bucket if needed, allow a public policy, set it and the CORS rules. Returns what was done."""
    from botocore.exceptions import ClientError

    c, bucket, done = store.client, store.bucket, []
    try:
        c.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        region = c.meta.region_name
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        c.create_bucket(**kwargs)
        done.append(f"created bucket {bucket}")
    try:
        # New AWS buckets block public policies; ACLs stay blocked (we grant through the policy only).
        c.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
        done.append("public access block: ACLs blocked, bucket policy allowed")
    except ClientError as exc:
        log.warning("public access block not set (%s); S3-compatible stores often lack it", exc.response["Error"]["Code"])
    c.put_bucket_policy(Bucket=bucket, Policy=json.dumps(public_read_policy(bucket, store.prefix)))
    done.append(f"policy: anonymous s3:GetObject on {store.url}/*, no listing, no writes")
    c.put_bucket_cors(Bucket=bucket, CORSConfiguration=CORS_RULES)
    done.append("CORS: GET/HEAD from any origin, Range allowed, Content-Range/Content-Length/ETag exposed")
    try:
        c.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
            "ID": "abort-interrupted-uploads", "Status": "Enabled", "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}]})
        done.append("lifecycle: parts of interrupted multipart uploads removed after 7 days")
    except ClientError as exc:
        log.warning("lifecycle rule not set (%s)", exc.response["Error"]["Code"])
    return done

