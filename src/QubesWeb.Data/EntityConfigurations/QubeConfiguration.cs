using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using QubesWeb.Data.Qubes;

namespace QubesWeb.Data.EntityConfigurations;

public class QubeConfiguration : IEntityTypeConfiguration<Qube>
{
    public void Configure(EntityTypeBuilder<Qube> b)
    {
        b.Property(q => q.Name).HasMaxLength(QubeRules.MaxNameLength).UseCollation("BINARY");
        b.HasIndex(q => q.Name).IsUnique();
        b.HasIndex(q => q.Uuid).IsUnique();
        b.Property(q => q.Class).HasConversion<string>().HasMaxLength(16);
        b.HasOne(q => q.Label).WithMany().HasForeignKey(q => q.LabelId).OnDelete(DeleteBehavior.Restrict);
        // Restrict: a template with dependents, or a netvm with clients, must never vanish underneath them.
        b.HasOne(q => q.Template).WithMany(t => t.Dependents).HasForeignKey(q => q.TemplateId).OnDelete(DeleteBehavior.Restrict);
        b.HasOne(q => q.NetVm).WithMany(n => n.NetworkClients).HasForeignKey(q => q.NetVmId).OnDelete(DeleteBehavior.Restrict);
        // Restrict too: a template's updates must not silently switch to another qube's proxy.
        b.HasOne(q => q.UpdateVm).WithMany().HasForeignKey(q => q.UpdateVmId).OnDelete(DeleteBehavior.Restrict);
        b.HasMany(q => q.Features).WithOne().HasForeignKey(f => f.QubeId).OnDelete(DeleteBehavior.Cascade);
        b.HasMany(q => q.Volumes).WithOne().HasForeignKey(v => v.QubeId).OnDelete(DeleteBehavior.Cascade);
        b.Property(q => q.InstallMedia).HasMaxLength(4096);
        // Unique: two qubes on one address (or MAC) would take each other's traffic, and the anti-spoofing filter
        // would let either pose as the other. NULLs (dom0) do not collide in a SQLite unique index.
        b.Property(q => q.IpAddress).HasMaxLength(15);
        b.HasIndex(q => q.IpAddress).IsUnique();
        b.Property(q => q.MacAddress).HasMaxLength(17);
        b.HasIndex(q => q.MacAddress).IsUnique();
        b.Property(q => q.FirewallPolicy).HasConversion<string>().HasMaxLength(8);
        b.HasMany(q => q.FirewallRules).WithOne().HasForeignKey(r => r.QubeId).OnDelete(DeleteBehavior.Cascade);
        b.Ignore(q => q.Updateable);
    }
}

public class FirewallRuleConfiguration : IEntityTypeConfiguration<FirewallRule>
{
    public void Configure(EntityTypeBuilder<FirewallRule> b)
    {
        b.HasIndex(r => new { r.QubeId, r.Position }).IsUnique();
        b.Property(r => r.Action).HasConversion<string>().HasMaxLength(8);
        b.Property(r => r.Protocol).HasConversion<string>().HasMaxLength(8);
        b.Property(r => r.Destination).HasMaxLength(18);
        b.Property(r => r.Comment).HasMaxLength(FirewallRules.MaxCommentLength);
    }
}

public class QubeFeatureConfiguration : IEntityTypeConfiguration<QubeFeature>
{
    public void Configure(EntityTypeBuilder<QubeFeature> b)
    {
        b.HasKey(f => new { f.QubeId, f.Key });
        b.Property(f => f.Key).HasMaxLength(128);
    }
}

public class VolumeConfiguration : IEntityTypeConfiguration<Volume>
{
    public void Configure(EntityTypeBuilder<Volume> b)
    {
        b.Property(v => v.Kind).HasConversion<string>().HasMaxLength(16);
        b.HasIndex(v => new { v.QubeId, v.Kind }).IsUnique();
        b.HasMany(v => v.Revisions).WithOne().HasForeignKey(r => r.VolumeId).OnDelete(DeleteBehavior.Cascade);
        // Not a foreign key: a template's root may go while nothing runs on it, and a stale overlay row must not block that.
        b.HasIndex(v => v.OverlaySourceVolumeId);
        // Not a foreign key either: the pin is honoured by the rules (removal refused), not by a cascade.
        b.HasIndex(v => v.DetachSourceVolumeId);
        b.Ignore(v => v.IsSaveOnStopRoot);
    }
}

public class RootRevisionConfiguration : IEntityTypeConfiguration<RootRevision>
{
    public void Configure(EntityTypeBuilder<RootRevision> b)
    {
        b.HasIndex(r => new { r.VolumeId, r.Number }).IsUnique();
        b.Property(r => r.State).HasConversion<string>().HasMaxLength(16);
        b.Property(r => r.Reason).HasMaxLength(200);
    }
}

public class LabelConfiguration : IEntityTypeConfiguration<Label>
{
    public void Configure(EntityTypeBuilder<Label> b)
    {
        b.Property(l => l.Id).ValueGeneratedNever();
        b.HasIndex(l => l.Name).IsUnique();
        b.Property(l => l.Name).HasMaxLength(32);
        b.Property(l => l.Color).HasMaxLength(7);
        b.HasData(Label.Defaults.Select(l => new Label { Id = l.Id, Name = l.Name, Color = l.Color }));
    }
}
