using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace QubesWeb.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class RootRevisions : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "CurrentRevision",
                table: "Volumes",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<DateTime>(
                name: "OverlayCreatedUtc",
                table: "Volumes",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "OverlayRevision",
                table: "Volumes",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "OverlaySourceVolumeId",
                table: "Volumes",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "RevisionsToKeep",
                table: "Volumes",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.CreateTable(
                name: "Revisions",
                columns: table => new
                {
                    Id = table.Column<int>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    VolumeId = table.Column<int>(type: "INTEGER", nullable: false),
                    Number = table.Column<int>(type: "INTEGER", nullable: false),
                    Path = table.Column<string>(type: "TEXT", nullable: false),
                    BackingNumber = table.Column<int>(type: "INTEGER", nullable: true),
                    CreatedUtc = table.Column<DateTime>(type: "TEXT", nullable: false),
                    Reason = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    SizeBytes = table.Column<long>(type: "INTEGER", nullable: false),
                    State = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Revisions", x => x.Id);
                    table.ForeignKey(
                        name: "FK_Revisions_Volumes_VolumeId",
                        column: x => x.VolumeId,
                        principalTable: "Volumes",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_Volumes_OverlaySourceVolumeId",
                table: "Volumes",
                column: "OverlaySourceVolumeId");

            migrationBuilder.CreateIndex(
                name: "IX_Revisions_VolumeId_Number",
                table: "Revisions",
                columns: new[] { "VolumeId", "Number" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "Revisions");

            migrationBuilder.DropIndex(
                name: "IX_Volumes_OverlaySourceVolumeId",
                table: "Volumes");

            migrationBuilder.DropColumn(
                name: "CurrentRevision",
                table: "Volumes");

            migrationBuilder.DropColumn(
                name: "OverlayCreatedUtc",
                table: "Volumes");

            migrationBuilder.DropColumn(
                name: "OverlayRevision",
                table: "Volumes");

            migrationBuilder.DropColumn(
                name: "OverlaySourceVolumeId",
                table: "Volumes");

            migrationBuilder.DropColumn(
                name: "RevisionsToKeep",
                table: "Volumes");
        }
    }
}
