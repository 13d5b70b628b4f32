using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using QubesWeb.Data.Jobs;

namespace QubesWeb.Data.EntityConfigurations;

public class JobConfiguration : IEntityTypeConfiguration<Job>
{
    public void Configure(EntityTypeBuilder<Job> b)
    {
        b.Property(j => j.Kind).HasMaxLength(32);
        b.Property(j => j.Target).HasMaxLength(64);
        b.Property(j => j.State).HasConversion<string>().HasMaxLength(16);
        b.HasIndex(j => j.State);
        b.HasIndex(j => j.Target);
        b.HasMany(j => j.Log).WithOne().HasForeignKey(l => l.JobId).OnDelete(DeleteBehavior.Cascade);
        b.Ignore(j => j.IsFinished);
    }
}

public class JobLogLineConfiguration : IEntityTypeConfiguration<JobLogLine>
{
    public void Configure(EntityTypeBuilder<JobLogLine> b)
    {
        b.Property(l => l.Level).HasConversion<string>().HasMaxLength(8);
        b.HasIndex(l => new { l.JobId, l.Id });
    }
}

public class QubeLockConfiguration : IEntityTypeConfiguration<QubeLock>
{
    public void Configure(EntityTypeBuilder<QubeLock> b)
    {
        b.HasKey(l => l.QubeName);
        b.Property(l => l.QubeName).HasMaxLength(64);
        b.HasOne<Job>().WithMany().HasForeignKey(l => l.JobId).OnDelete(DeleteBehavior.Cascade);
    }
}
