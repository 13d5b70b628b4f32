using Microsoft.EntityFrameworkCore;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;

namespace QubesWeb.Data;

/// <summary>The inventory: the source of truth for which qubes exist and how they are built (Qubes' qubes.xml).</summary>
public class InventoryDbContext(DbContextOptions<InventoryDbContext> options) : DbContext(options)
{
    public DbSet<Qube> Qubes => Set<Qube>();
    public DbSet<QubeFeature> Features => Set<QubeFeature>();
    public DbSet<FirewallRule> FirewallRules => Set<FirewallRule>();
    public DbSet<Volume> Volumes => Set<Volume>();
    public DbSet<RootRevision> Revisions => Set<RootRevision>();
    public DbSet<Label> Labels => Set<Label>();
    public DbSet<Job> Jobs => Set<Job>();
    public DbSet<JobLogLine> JobLog => Set<JobLogLine>();
    public DbSet<QubeLock> Locks => Set<QubeLock>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) =>
        modelBuilder.ApplyConfigurationsFromAssembly(typeof(InventoryDbContext).Assembly);
}
